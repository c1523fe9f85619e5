package rtc

import (
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/transport/v4/packetio"
)

// SRTPIntake decrypts one connection's incoming SRTP on its socket's
// reading goroutine, and writes each plain packet into the buffer pion's
// track reads: the SRTP read stream's, which pion makes with the setting
// engine's BufferFactory (Buffer, here). pion's interceptors (receiver
// reports, transport-wide feedback; a meeting makes its NACKs itself) and its RTX and simulcast
// handling still run on the track's read; what is saved is pion's
// goroutine hand-overs between the socket and the track (DirectReceiver
// says why that matters).
//
// A stream is taken from its buffer's making on: pion decrypts the
// stream's first packet (which makes the buffer) and any that were on
// their way through its goroutines then; the intake decrypts the rest,
// with an SRTP context of its own. If the intake's first packet of a
// stream does not authenticate with that context (pion's rollover
// counter already past the intake's guess), the packet and the stream are
// left to pion from then on. Once a packet of the stream has, one that
// does not (a datagram forged from the peer's address) is dropped. A
// stream whose buffer pion closed goes back to pion.
//
// The intake's replay window starts empty where pion's left off: a packet
// pion delivered while the intake started may be delivered once more (a
// receiver's sequence numbers tell it).
//
// It is used by the server's DirectReceiver and by lookout-bench's
// subscribers, whose load on the machine's two cores is the server's
// measurement's.
type SRTPIntake struct {
	// Counters shared with others, if set: of packets delivered, and
	// of datagrams refused (dropped or given back for a fault).
	counted, refused *atomic.Uint64

	// streams are the SRTP read streams' buffers by SSRC: copied on
	// change, read for every datagram.
	streamsMu sync.Mutex
	streams   atomic.Pointer[map[uint32]*intakeBuffer]

	// Used on the socket's reading goroutine.
	readMu sync.Mutex
	ctx    *srtp.Context // set by Start
	hdr    rtp.Header
	plain  []byte

	taken atomic.Uint64
}

// NewSRTPIntake makes an intake that also counts what it delivers and
// refuses into counted and refused, if not nil.
func NewSRTPIntake(counted, refused *atomic.Uint64) *SRTPIntake {
	return &SRTPIntake{counted: counted, refused: refused}
}

// intakeBuffer is a read stream's buffer; closing it (pion closes the
// stream) ends the intake's taking of its SSRC.
type intakeBuffer struct {
	*packetio.Buffer
	in   *SRTPIntake
	ssrc uint32
}

func (b *intakeBuffer) Close() error {
	b.in.drop(b.ssrc, b)
	return b.Buffer.Close()
}

// The buffers' limits, pion's own (srtp: srtpBufferSize, srtcpBufferSize).
const (
	recvRTPBufferSize  = 1000 * 1000
	recvRTCPBufferSize = 100 * 1000
)

// recvReplayWindow is how many packets back a packet may come and still be
// taken once: pion's session's default.
const recvReplayWindow = 64

// Buffer is the connection's SettingEngine.BufferFactory: pion's
// buffers, with an RTP stream's noted for the intake.
func (in *SRTPIntake) Buffer(kind packetio.BufferPacketType, ssrc uint32) io.ReadWriteCloser {
	b := packetio.NewBuffer()
	if kind != packetio.RTPBufferPacket {
		b.SetLimitSize(recvRTCPBufferSize)
		return b
	}
	b.SetLimitSize(recvRTPBufferSize)
	ib := &intakeBuffer{Buffer: b, in: in, ssrc: ssrc}
	in.editStreams(func(m map[uint32]*intakeBuffer) { m[ssrc] = ib })
	return ib
}

// drop ends the taking of ssrc, if b is still its buffer.
func (in *SRTPIntake) drop(ssrc uint32, b *intakeBuffer) {
	in.editStreams(func(m map[uint32]*intakeBuffer) {
		if m[ssrc] == b {
			delete(m, ssrc)
		}
	})
}

func (in *SRTPIntake) editStreams(edit func(map[uint32]*intakeBuffer)) {
	editCopied(&in.streamsMu, &in.streams, edit)
}

// Start gives the intake the peer's SRTP keys (cfg's Remote ones) and
// profile; Take takes nothing before. Call it once: a second start would
// begin the streams' rollover counters and replay windows again.
func (in *SRTPIntake) Start(cfg srtp.Config) error {
	ctx, err := srtp.CreateContext(cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt, cfg.Profile, srtp.SRTPReplayProtection(recvReplayWindow))
	if err != nil {
		return err
	}
	in.readMu.Lock()
	in.ctx, in.plain = ctx, make([]byte, 0, sendQueueMTU)
	in.readMu.Unlock()
	return nil
}

// Take takes one datagram from the connection's peer, if it is SRTP;
// false leaves it to pion (not SRTP, a stream the intake does not take,
// or a packet that did not authenticate with the intake's context while
// its stream was not yet proven). It allocates nothing.
func (in *SRTPIntake) Take(b []byte) bool {
	streams := in.streams.Load()
	if streams == nil || !isRTP(b) {
		return false
	}
	ssrc := binary.BigEndian.Uint32(b[8:12])
	buf := (*streams)[ssrc]
	if buf == nil {
		return false
	}
	in.readMu.Lock()
	defer in.readMu.Unlock()
	if in.ctx == nil {
		return false
	}
	// Once a packet of the stream authenticated with the intake's
	// context, the context's rollover counter is the stream's.
	_, proven := in.ctx.ROC(ssrc)
	plain, err := in.ctx.DecryptRTP(in.plain[:0], b, &in.hdr)
	if errors.Is(err, srtp.ErrFailedToVerifyAuthTag) && !proven {
		// The stream stays with pion from now on (see the type's
		// comment).
		in.drop(ssrc, buf)
		in.count(in.refused)
		return false
	}
	if err != nil {
		// A replay, a runt or a forgery: dropped, as pion's session
		// drops them.
		in.count(in.refused)
		return true
	}
	in.plain = plain[:0] // grown, if it had to, for the next
	if _, err := buf.Write(plain); err != nil {
		// The buffer full (a track nobody reads) or closed: dropped,
		// as pion drops it, and not counted (pion does not either).
		return true
	}
	in.taken.Add(1)
	in.count(in.counted)
	return true
}

func (in *SRTPIntake) count(c *atomic.Uint64) {
	if c != nil {
		c.Add(1)
	}
}

// Taken is how many packets the intake decrypted and handed to pion's
// tracks.
func (in *SRTPIntake) Taken() uint64 { return in.taken.Load() }

// Decrypting is how many of the connection's streams the intake
// decrypts: those with a buffer, of which it decrypted a packet.
func (in *SRTPIntake) Decrypting() int {
	streams := in.streams.Load()
	if streams == nil {
		return 0
	}
	in.readMu.Lock()
	defer in.readMu.Unlock()
	if in.ctx == nil {
		return 0
	}
	n := 0
	for ssrc := range *streams {
		if _, ok := in.ctx.ROC(ssrc); ok {
			n++
		}
	}
	return n
}

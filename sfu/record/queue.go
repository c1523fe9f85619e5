package record

import (
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// maxPayload is the largest RTP payload a queue slot holds: the SFU reads
// packets into 1500-byte buffers, so nothing larger arrives; a larger
// payload is dropped and counted like a packet that found the queue full.
const maxPayload = 1500

// slot is one queued packet: the few header fields the recorder uses, a
// copy of the payload and when it arrived.
type slot struct {
	at     time.Time
	seq    uint16
	ts     uint32
	ssrc   uint32
	marker bool
	n      int
	buf    []byte // maxPayload bytes of the queue's one allocation
}

// queue is a bounded single-consumer ring of preallocated slots, so that
// the SFU's read loop hands a packet over with a copy and two atomic
// operations, and never waits for the disk. Producers serialise on the
// track's mutex (normally there is one: the track's read loop); the
// consumer is the track's goroutine. head and tail only grow: head-tail is
// the number of queued packets.
type queue struct {
	slots []slot
	head  atomic.Uint64 // next slot to fill; written by producers
	tail  atomic.Uint64 // next slot to read; written by the consumer
}

func newQueue(n int) *queue {
	q := &queue{slots: make([]slot, n)}
	mem := make([]byte, n*maxPayload)
	for i := range q.slots {
		q.slots[i].buf = mem[i*maxPayload : (i+1)*maxPayload : (i+1)*maxPayload]
	}
	return q
}

// push copies p into the next slot; false when the queue is full or the
// payload too large. Callers hold the producers' lock.
func (q *queue) push(p *rtp.Packet, at time.Time) bool {
	h := q.head.Load()
	if h-q.tail.Load() >= uint64(len(q.slots)) || len(p.Payload) > maxPayload {
		return false
	}
	s := &q.slots[h%uint64(len(q.slots))]
	s.at = at
	s.seq = p.SequenceNumber
	s.ts = p.Timestamp
	s.ssrc = p.SSRC
	s.marker = p.Marker
	s.n = copy(s.buf, p.Payload)
	// The store publishes the slot's contents to the consumer.
	q.head.Store(h + 1)
	return true
}

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// leanDevice is a simulated device as small as a lamp's firmware: one TCP
// connection speaking MQTT 3.1.1 (packets encoded and decoded by mochi's
// codec), one goroutine reading, and an answer to each command written
// with its PUBACK in one system call. paho, a full client with a
// goroutine and a token per message, costs the bench about 75 ms of CPU
// per burst of 1,000 commands on the two cores it shares with lookout;
// real lamps run on their own hardware, so the bench keeps its own share
// small. --paho-devices measures with paho instead.
type leanDevice struct {
	id   string
	conn net.Conn
	r    *bufio.Reader
	// answered is told (without blocking) after each ack is written.
	answered chan struct{}
	nextID   uint16
	// got is when the last command arrived (for LOOKOUT_BENCH_VERBOSE).
	got atomic.Int64
	// body holds the packet read last: each is done with before the next
	// read, and the bench's own allocations stay off the cores lookout
	// needs.
	body []byte
}

// dialLeanDevice connects, subscribes to the device's cmd topic at QoS 1
// and publishes its retained online status, each step waiting for the
// broker's answer.
func dialLeanDevice(addr, id, password string, answered chan struct{}) (*leanDevice, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	d := &leanDevice{id: id, conn: conn, r: bufio.NewReaderSize(conn, 1024), answered: answered}
	fail := func(step string, err error) (*leanDevice, error) {
		conn.Close()
		return nil, fmt.Errorf("device %s: %s: %w", id, step, err)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var buf bytes.Buffer
	connect := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 60, ClientIdentifier: id,
			UsernameFlag: true, Username: []byte(id), PasswordFlag: true, Password: []byte(password)}}
	if err := connect.ConnectEncode(&buf); err != nil {
		return fail("connect", err)
	}
	if err := d.roundTrip(buf.Bytes(), packets.Connack); err != nil {
		return fail("connect", err)
	}
	buf.Reset()
	sub := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, ProtocolVersion: 4, PacketID: d.packetID(),
		Filters: packets.Subscriptions{{Filter: "lookout/v1/devices/" + id + "/cmd", Qos: 1}}}
	if err := sub.SubscribeEncode(&buf); err != nil {
		return fail("subscribe", err)
	}
	if err := d.roundTrip(buf.Bytes(), packets.Suback); err != nil {
		return fail("subscribe", err)
	}
	buf.Reset()
	d.publish(&buf, "lookout/v1/devices/"+id+"/status", []byte("online"), true)
	if err := d.roundTrip(buf.Bytes(), packets.Puback); err != nil {
		return fail("status", err)
	}
	_ = conn.SetDeadline(time.Time{})
	return d, nil
}

func (d *leanDevice) packetID() uint16 {
	d.nextID++
	if d.nextID == 0 {
		d.nextID = 1
	}
	return d.nextID
}

// publish appends a QoS 1 PUBLISH to buf.
func (d *leanDevice) publish(buf *bytes.Buffer, topic string, payload []byte, retain bool) {
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1, Retain: retain}, ProtocolVersion: 4,
		TopicName: topic, Payload: payload, PacketID: d.packetID()}
	_ = pk.PublishEncode(buf)
}

// roundTrip writes a packet and reads until the broker's answer of type
// want arrives; a CONNACK that refuses is an error.
func (d *leanDevice) roundTrip(out []byte, want byte) error {
	if _, err := d.conn.Write(out); err != nil {
		return err
	}
	for {
		fh, body, err := d.read()
		if err != nil {
			return err
		}
		if fh.Type != want {
			continue
		}
		if want == packets.Connack && (len(body) < 2 || body[1] != 0) {
			return fmt.Errorf("refused (%x)", body)
		}
		return nil
	}
}

// read reads one packet: its fixed header and its body.
func (d *leanDevice) read() (packets.FixedHeader, []byte, error) {
	var fh packets.FixedHeader
	hb, err := d.r.ReadByte()
	if err != nil {
		return fh, nil, err
	}
	if err := fh.Decode(hb); err != nil {
		return fh, nil, err
	}
	n, shift := 0, 0
	for {
		b, err := d.r.ReadByte()
		if err != nil {
			return fh, nil, err
		}
		n |= int(b&0x7f) << shift
		if b&0x80 == 0 {
			break
		}
		if shift += 7; shift > 21 {
			return fh, nil, errors.New("malformed remaining length")
		}
	}
	fh.Remaining = n
	if cap(d.body) < n {
		d.body = make([]byte, n)
	}
	body := d.body[:n]
	_, err = io.ReadFull(d.r, body)
	return fh, body, err
}

// serve answers every command with ok until the connection closes: the
// command's PUBACK and the ack message go out in one write.
func (d *leanDevice) serve() {
	ackTopic := "lookout/v1/devices/" + d.id + "/cmd/ack"
	var out bytes.Buffer
	for {
		fh, body, err := d.read()
		if err != nil {
			return
		}
		if fh.Type != packets.Publish {
			continue // PUBACKs of our acks
		}
		d.got.Store(time.Now().UnixNano())
		pk := packets.Packet{FixedHeader: fh, ProtocolVersion: 4}
		if pk.PublishDecode(body) != nil {
			continue
		}
		out.Reset()
		if fh.Qos > 0 {
			puback := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, ProtocolVersion: 4, PacketID: pk.PacketID}
			_ = puback.PubackEncode(&out)
		}
		id, ok := commandID(pk.Payload)
		if ok {
			d.publish(&out, ackTopic, append(append([]byte(`{"id":"`), id...), `","ok":true}`...), false)
		}
		if _, err := d.conn.Write(out.Bytes()); err != nil {
			return
		}
		if ok {
			select {
			case d.answered <- struct{}{}:
			default:
			}
		}
	}
}

// commandID finds the command's id in its JSON: the first "id" member,
// which is where Lookout writes it.
func commandID(payload []byte) ([]byte, bool) {
	const key = `"id":"`
	i := bytes.Index(payload, []byte(key))
	if i < 0 {
		return nil, false
	}
	rest := payload[i+len(key):]
	end := bytes.IndexByte(rest, '"')
	if end <= 0 {
		return nil, false
	}
	return rest[:end], true
}

func (d *leanDevice) close() {
	_, _ = d.conn.Write([]byte{packets.Disconnect << 4, 0})
	d.conn.Close()
}

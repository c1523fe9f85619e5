package meeting

import (
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lookout-cc/lookout/sfu/signal"
)

// Signaling connection limits.
const (
	// outQueue is how many messages may wait for a client that does not
	// read; one more and it is dropped as too slow.
	outQueue     = 256
	pingInterval = 15 * time.Second
	// readTimeout: a client silent this long (no message, no pong) is
	// gone.
	readTimeout  = 40 * time.Second
	writeTimeout = 10 * time.Second
	joinTimeout  = 10 * time.Second
	// readLimit: a frame over it closes the connection (1009); one over
	// signal.MaxMessage is refused with too_large and the connection
	// stays.
	readLimit = 2 * signal.MaxMessage
)

// WebSocket close codes of the protocol (docs/signaling.md).
const (
	closeBadRequest   = 4400
	closeUnauthorized = 4401
	closeForbidden    = 4403
	closeNotFound     = 4404
)

// conn is a participant's signaling WebSocket: a writer goroutine with a
// bounded queue, so that a slow client never blocks the room.
type conn struct {
	ws   *websocket.Conn
	out  chan []byte
	once sync.Once
	// closing is closed to end the writer, which sends what is queued,
	// then a close frame with code and text.
	closing chan struct{}
	code    int
	text    string
	done    chan struct{}
	// readerGone is closed when the reading loop has returned.
	readerGone chan struct{}
}

func newConn(ws *websocket.Conn) *conn {
	c := &conn{ws: ws, out: make(chan []byte, outQueue), closing: make(chan struct{}), done: make(chan struct{}), readerGone: make(chan struct{})}
	go c.write()
	return c
}

// send queues m; a client too slow to take it is disconnected.
func (c *conn) send(m *signal.ServerMessage) {
	select {
	case <-c.closing:
		return
	default:
	}
	select {
	case c.out <- m.Encode():
	default:
		c.close(websocket.ClosePolicyViolation, "too_slow")
	}
}

// close ends the connection after the queued messages, with a close frame.
func (c *conn) close(code int, text string) {
	c.once.Do(func() {
		c.code, c.text = code, text
		close(c.closing)
	})
}

// fail tells the client of e and closes with code.
func (c *conn) fail(e *signal.Error, code int) {
	c.send(signal.ErrorMessage(e, ""))
	c.close(code, e.Code)
}

// closeAfter closes normally once the queue is sent; reason goes in the
// close frame.
func (c *conn) closeAfter(reason string) { c.close(websocket.CloseNormalClosure, reason) }

func (c *conn) write() {
	defer close(c.done)
	defer c.ws.Close()
	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	for {
		select {
		case b := <-c.out:
			if c.writeFrame(websocket.TextMessage, b) != nil {
				c.close(websocket.CloseAbnormalClosure, "")
				return
			}
		case <-ping.C:
			if c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout)) != nil {
				c.close(websocket.CloseAbnormalClosure, "")
				return
			}
		case <-c.closing:
			for {
				select {
				case b := <-c.out:
					if c.writeFrame(websocket.TextMessage, b) != nil {
						return
					}
					continue
				default:
				}
				break
			}
			_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(c.code, c.text), time.Now().Add(time.Second))
			// Give the client a moment to read the close frame before
			// the socket goes.
			timer := time.NewTimer(time.Second)
			defer timer.Stop()
			select {
			case <-c.readerDone():
			case <-timer.C:
			}
			return
		}
	}
}

func (c *conn) writeFrame(kind int, b []byte) error {
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.ws.WriteMessage(kind, b)
}

// readerGone is closed by the reader when it returns.
func (c *conn) readerDone() <-chan struct{} { return c.readerGone }

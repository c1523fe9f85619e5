package mqtt

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// bufferedConn reads through a buffer. paho reads each packet's header,
// length and body straight from the connection, three or more system calls
// a message; at tens of thousands of messages a second that was nearly half
// the server's CPU.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// openBuffered dials tcp:// (mqtt://) and ssl:// (tls://, mqtts://) brokers
// with a 64 KiB read buffer. WebSocket URLs keep paho's own dialer.
func openBuffered(uri *url.URL, opts paho.ClientOptions) (net.Conn, error) {
	d := net.Dialer{Timeout: opts.ConnectTimeout}
	ctx := context.Background()
	var conn net.Conn
	var err error
	switch uri.Scheme {
	case "tcp", "mqtt":
		conn, err = d.DialContext(ctx, "tcp", uri.Host)
	case "ssl", "tls", "mqtts", "tcps":
		td := tls.Dialer{NetDialer: &d, Config: opts.TLSConfig}
		conn, err = td.DialContext(ctx, "tcp", uri.Host)
	default:
		return nil, fmt.Errorf("unsupported scheme %q", uri.Scheme)
	}
	if err != nil {
		return nil, err
	}
	return &bufferedConn{Conn: conn, r: bufio.NewReaderSize(conn, 64<<10)}, nil
}

package mqtt

import (
	"strings"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// inboundOnlyStore is paho's memory store that keeps inbound packets (QoS 2
// flow state) but not outbound ones.
//
// Why: with a persistent session, paho re-sends stored outbound messages on
// reconnect, and marks them DUP while its sender may already be writing a
// message published from the connect handler: a data race inside paho
// (seen with -race). Lookout's own publishes are commands, which the
// command layer retries until acked or expired; it needs no second copy.
type inboundOnlyStore struct {
	paho.Store
}

// NewInboundOnlyStore returns a store for clients whose callers retry their
// own publishes.
func NewInboundOnlyStore() paho.Store { return inboundOnlyStore{paho.NewMemoryStore()} }

func (s inboundOnlyStore) Put(key string, m packets.ControlPacket) {
	if strings.HasPrefix(key, "o.") {
		return
	}
	s.Store.Put(key, m)
}

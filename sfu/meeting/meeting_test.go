package meeting

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/sfu/rtc"
	"github.com/lookout-cc/lookout/sfu/signal"
)

func isType(t string) func(signal.ServerMessage) bool {
	return func(m signal.ServerMessage) bool { return m.Type == t }
}

// Two participants publish simulcast video and audio; each receives the
// other's, the tracks are announced, and the one who speaks is the active
// speaker. Every way the SFU can carry media: its direct sender and
// receiver (the defaults), the sender with pion's receive path
// (webrtc.direct_receive off), and pion's paths (ICE-TCP connections, and
// webrtc.direct_send and direct_receive off).
func TestTwoParticipantsExchangeMedia(t *testing.T) {
	t.Run("direct sender and receiver", func(t *testing.T) { exchangeMedia(t) })
	t.Run("direct sender", func(t *testing.T) { exchangeMedia(t, pionReceive) })
	t.Run("pion's paths", func(t *testing.T) { exchangeMedia(t, pionPaths) })
}

func exchangeMedia(t *testing.T, engine ...func(*rtc.Params)) {
	e := newEnv(t, engine...)
	a := e.join("alice", hostRights)
	b := e.join("bob", memberRights)
	a.wait("bob joined", func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeParticipantJoined && m.Participant.Identity == "bob"
	})
	pa := a.publish(true)
	b.publish(false)
	for _, c := range []*client{a, b} {
		other := "alice"
		if c == a {
			other = "bob"
		}
		c.wait(other+"'s video", func(m signal.ServerMessage) bool {
			return m.Type == signal.TypeTrackPublished && m.Identity == other && m.Track.Kind == "video" && m.Track.Source == "camera"
		})
		c.waitPackets(other+"-camera", 60, 10*time.Second)
		c.waitPackets(other+"-microphone", 50, 10*time.Second)
	}
	if m := b.wait("alice's track", func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeTrackPublished && m.Identity == "alice" && m.Track.Kind == "video"
	}); !m.Track.Simulcast || m.Track.Codec != "VP8" {
		t.Fatalf("alice's video: %+v", m.Track)
	}

	// Retransmissions go on RTX streams of their own.
	if offer := b.wait("offer with video", func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeOffer && strings.Contains(m.SDP, "m=video")
	}); !strings.Contains(offer.SDP, "rtx/90000") || !strings.Contains(offer.SDP, "ssrc-group:FID") {
		t.Fatal("the subscriber offer has no RTX")
	}

	// The metrics show each participant's media.
	var in, out float64
	waitUntil(t, 5*time.Second, func() bool {
		in, out = metricValue(t, e, "lookout_meeting_bitrate_bits_per_second", "alice", "in"), metricValue(t, e, "lookout_meeting_bitrate_bits_per_second", "bob", "out")
		return in > 100_000 && out > 50_000
	}, func() string { return fmt.Sprintf("bitrate metrics: alice in %.0f, bob out %.0f", in, out) })

	// The SFU's sender reports reach the subscribers: their receiver
	// reports answer them, which gives the round-trip time.
	var rtt float64
	waitUntil(t, 6*time.Second, func() bool {
		rtt = metricValue(t, e, "lookout_meeting_rtt_seconds", "bob", "")
		return rtt > 0 && rtt < 0.5
	}, func() string { return fmt.Sprintf("bob's round-trip time %v: no sender report answered", rtt) })

	// Alice speaks (-20 dBov), Bob is silent.
	pa.level.Store(20)
	b.wait("alice speaking", func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeSpeakers && len(m.Speakers) > 0 && m.Speakers[0].Identity == "alice"
	})
	pa.level.Store(127)
	b.wait("silence", func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeSpeakers && len(m.Speakers) == 0
	})

	// Chat goes to everyone over the data channel, with the sender set
	// by the server.
	a.send(map[string]any{"type": "chat", "text": "请各县汇报水位"})
	var got string
	waitUntil(t, 5*time.Second, func() bool {
		b.mu.Lock()
		got = strings.Join(b.chat, "|")
		b.mu.Unlock()
		return strings.Contains(got, "alice: 请各县汇报水位")
	}, func() string { return fmt.Sprintf("bob's chat: %q", got) })

	// Bob leaves with a goodbye: alice is told, and bob's tracks end.
	b.send(map[string]any{"type": "leave"})
	a.wait("bob left", func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeParticipantLeft && m.Identity == "bob" && m.Reason == signal.LeftLeft
	})
	a.wait("bob's video unpublished", func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeTrackUnpublished && m.Identity == "bob"
	})
}

// metricValue reads a meeting metric of participant (and direction, when
// given) from the SFU's registry; 0 when absent.
func metricValue(t *testing.T, e *env, name, participant, direction string) float64 {
	t.Helper()
	families, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["participant"] != participant || (direction != "" && labels["direction"] != direction) {
				continue
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// The loss on a publisher's link shows in the metrics, from the sequence
// numbers the SFU did not receive: none, then one video packet in ten
// missing, then none again.
func TestInboundLossMetric(t *testing.T) {
	e := newEnv(t)
	a := e.join("alice", hostRights)
	pa := a.publish(true)
	loss := func() float64 { return metricValue(t, e, "lookout_meeting_loss_ratio", "alice", "in") }
	waitUntil(t, 10*time.Second, func() bool {
		return metricValue(t, e, "lookout_meeting_bitrate_bits_per_second", "alice", "in") > 100_000
	}, func() string { return "no bitrate in from alice" })
	if l := loss(); l != 0 {
		t.Fatalf("loss in %v with none lost", l)
	}
	pa.gap.Store(10)
	// Audio (50 packets a second) comes whole: a tenth of the video is
	// somewhat less than a tenth of all.
	waitUntil(t, 5*time.Second, func() bool { l := loss(); return l > 0.05 && l < 0.11 }, func() string {
		return fmt.Sprintf("loss in %v with a tenth of the video missing", loss())
	})
	pa.gap.Store(0)
	waitUntil(t, 5*time.Second, func() bool { return loss() == 0 }, func() string {
		return fmt.Sprintf("loss in %v after the gaps stopped", loss())
	})
}

// seqCount counts the numbers a stream spans, across the wrap, and the
// packets that came: late and repeated ones count as received, and move
// nothing.
func TestSeqCount(t *testing.T) {
	for _, tc := range []struct {
		name               string
		seqs               []uint16
		expected, received int64
	}{
		{"in order", []uint16{1, 2, 3, 4}, 4, 4},
		{"a gap", []uint16{1, 2, 5}, 5, 3},
		{"late", []uint16{1, 3, 2, 4}, 4, 4},
		{"repeated", []uint16{1, 2, 2, 3}, 3, 4},
		{"across the wrap", []uint16{65534, 65535, 0, 2}, 5, 4},
		{"late across the wrap", []uint16{65535, 1, 0}, 3, 3},
		{"far behind", []uint16{40000, 40001, 39000}, 2, 3},
	} {
		var c seqCount
		for _, s := range tc.seqs {
			c.add(s)
		}
		if e, r := c.expected.Load(), c.received.Load(); e != tc.expected || r != tc.received {
			t.Errorf("%s: expected %d received %d, want %d %d", tc.name, e, r, tc.expected, tc.received)
		}
	}
}

// Participants who join at the same moment each end up knowing all the
// others, their messages read in order as the browser client reads them:
// joined sets the list, participant_joined adds to it, participant_left
// takes from it. (Each was once told of another before getting a joined
// list taken without that one, and lost it.)
func TestSimultaneousJoinsSeeEachOther(t *testing.T) {
	e := newEnv(t)
	const rounds, n = 6, 4
	roster := func(c *client) []string {
		c.mu.Lock()
		defer c.mu.Unlock()
		known := map[string]bool{}
		for _, m := range c.msgs {
			switch m.Type {
			case signal.TypeJoined:
				known = map[string]bool{}
				for _, p := range m.Participants {
					known[p.Identity] = true
				}
			case signal.TypeParticipantJoined:
				if m.Participant != nil {
					known[m.Participant.Identity] = true
				}
			case signal.TypeParticipantLeft:
				delete(known, m.Identity)
			}
		}
		return slices.Sorted(maps.Keys(known))
	}
	for round := range rounds {
		ids := make([]string, n)
		clients := make([]*client, n)
		joins := make([]string, n)
		for i := range n {
			ids[i] = fmt.Sprintf("r%d-p%d", round, i)
			clients[i] = e.dial(ids[i])
			joins[i] = e.token(ids[i], memberRights)
		}
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.send(map[string]any{"type": "join", "token": joins[i]})
			}()
		}
		wg.Wait()
		for i, c := range clients {
			others := slices.Delete(slices.Clone(ids), i, i+1)
			waitUntil(t, 10*time.Second, func() bool { return slices.Equal(roster(c), others) },
				func() string { return fmt.Sprintf("round %d: %s knows %v, not %v", round, ids[i], roster(c), others) })
		}
		for _, c := range clients {
			c.close()
		}
	}
}

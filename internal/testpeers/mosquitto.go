package testpeers

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Mosquitto is a running Mosquitto broker on a loopback port.
type Mosquitto struct {
	// Addr is host:port; URL is tcp://host:port for paho.
	Addr string
	URL  string

	t        testing.TB
	bin      string
	confPath string
	mu       sync.Mutex
	proc     *process
}

// MosquittoOptions configure a broker. With no Users it admits anonymous
// clients; with Users only those, by password.
type MosquittoOptions struct {
	Users map[string]string
}

// StartMosquitto starts a broker for the test and stops it when the test ends.
func StartMosquitto(t testing.TB, opts MosquittoOptions) *Mosquitto {
	t.Helper()
	bin, err := FindBinary("mosquitto", "LOOKOUT_MOSQUITTO", "/usr/sbin/mosquitto")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf := "listener %s 127.0.0.1\n" + fmt.Sprintf("persistence true\npersistence_location %s/\nlog_dest stdout\nlog_type error\nlog_type warning\nmax_queued_messages 100000\n", dir)
	if os.Geteuid() == 0 {
		// Run as root, Mosquitto would drop to its own user, which cannot
		// write into the test's directory.
		conf += "user root\n"
	}
	if len(opts.Users) == 0 {
		conf += "allow_anonymous true\n"
	} else {
		pwPath := writeFile(t, dir, "passwd", "")
		users := make([]string, 0, len(opts.Users))
		for u := range opts.Users {
			users = append(users, u)
		}
		sort.Strings(users)
		pwBin, err := FindBinary("mosquitto_passwd", "", "/usr/bin/mosquitto_passwd")
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range users {
			if out, err := exec.Command(pwBin, "-b", pwPath, u, opts.Users[u]).CombinedOutput(); err != nil {
				t.Fatalf("mosquitto_passwd: %v: %s", err, out)
			}
		}
		conf += "allow_anonymous false\npassword_file " + pwPath + "\n"
	}
	// The port can be taken between our look and mosquitto's bind by
	// another test's peer: try again on a new one when mosquitto exits.
	var m *Mosquitto
	for attempt := 1; ; attempt++ {
		addr := FreeAddr(t)
		port := addr[strings.LastIndex(addr, ":")+1:]
		m = &Mosquitto{Addr: addr, URL: "tcp://" + addr, t: t, bin: bin,
			confPath: writeFile(t, dir, "mosquitto.conf", strings.Replace(conf, "%s", port, 1))}
		err := m.start()
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatal(err)
		}
		t.Logf("mosquitto did not start (attempt %d), trying a new port: %v", attempt, err)
	}
	t.Cleanup(m.Stop)
	return m
}

// Start (re)starts the broker on its port, keeping its persisted sessions
// and retained messages.
func (m *Mosquitto) Start() {
	m.t.Helper()
	if err := m.start(); err != nil {
		m.t.Fatal(err)
	}
}

func (m *Mosquitto) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc != nil {
		if ok, _ := m.proc.exited(); !ok {
			return nil
		}
	}
	p, err := startProcess("mosquitto", m.bin, "-c", m.confPath)
	if err != nil {
		return err
	}
	if err := p.waitFor(10*time.Second, dialReady(m.Addr)); err != nil {
		p.stop(time.Second)
		return err
	}
	m.proc = p
	return nil
}

// Stop stops the broker; Start brings it back on the same port.
func (m *Mosquitto) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc != nil {
		m.proc.stop(5 * time.Second)
	}
}

// Restart stops and starts the broker, as an outage does.
func (m *Mosquitto) Restart() {
	m.Stop()
	m.Start()
}

// Kill ends the program at once (SIGKILL), without a clean shutdown; Start
// brings it back.
func (m *Mosquitto) Kill() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc != nil {
		m.proc.kill()
	}
}

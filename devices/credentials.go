package devices

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"slices"
	"strings"

	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
)

// Credentials are a device's MQTT user name (its id) and password.
type Credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// newCredentials makes a random 160-bit password and the hash to keep.
//
// Device passwords are made by the server, never chosen by people, so a
// plain SHA-256 is enough to keep them: with 160 random bits there is
// nothing to guess, and it costs nanoseconds where argon2id would cost 19
// MiB and tens of milliseconds on every one of thousands of reconnects after
// a broker restart.
func newCredentials(id ID) (Credentials, []byte) {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	pw := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
	sum := sha256.Sum256([]byte(pw))
	return Credentials{Username: string(id), Password: pw}, sum[:]
}

// AuthenticateDevice checks a device's MQTT user name and password.
func (r *Registry) AuthenticateDevice(username, password string) (string, bool) {
	r.mu.RLock()
	e, ok := r.devices[ID(username)]
	r.mu.RUnlock()
	sum := sha256.Sum256([]byte(password))
	if !ok || e.secret == nil || e.dev.Disabled {
		return "", false
	}
	return username, subtle.ConstantTimeCompare(sum[:], e.secret) == 1
}

// TopicRoot is the prefix of every topic of a device (DESIGN.md).
const TopicRoot = "lookout/v1/devices/"

// deviceWriteTopics are the topics below its root a device may publish to.
var deviceWriteTopics = []string{"telemetry", "status", "cmd/ack", "nmea"}

// DeviceMayAccess reports whether a device may publish (write) to topic or
// subscribe to it: it publishes only under its own root and subscribes only
// to its own cmd topic.
func (r *Registry) DeviceMayAccess(deviceID, topic string, write bool) bool {
	if d, ok := r.Lookup(ID(deviceID)); !ok || d.Disabled {
		return false
	}
	rest, ok := strings.CutPrefix(topic, TopicRoot+deviceID+"/")
	if !ok {
		return false
	}
	if write {
		return slices.Contains(deviceWriteTopics, rest)
	}
	return rest == "cmd"
}

func slicesSortByID(ds []Device) {
	slices.SortFunc(ds, func(a, b Device) int { return strings.Compare(string(a.ID), string(b.ID)) })
}

// RotateCredentials gives a device inside scope a new MQTT password; the old
// one stops authenticating at once. It returns the new credentials, shown
// only here.
func (r *Registry) RotateCredentials(ctx context.Context, scope orgs.Scope, id ID) (Credentials, error) {
	d, err := r.GetDevice(scope, id)
	if err != nil {
		return Credentials{}, err
	}
	if d.Kind == "vessel" {
		return Credentials{}, errclass.New(errclass.Conflict, "no_mqtt_access", "vessels are reported by an AIS receiver and have no MQTT access")
	}
	creds, secret := newCredentials(id)
	if _, err := r.db.ExecContext(ctx, `UPDATE devices SET mqtt_secret_hash = ? WHERE id = ?`, secret, id); err != nil {
		return Credentials{}, fmt.Errorf("rotate credentials: %w", err)
	}
	r.mu.Lock()
	if e, ok := r.devices[id]; ok {
		e.secret = secret
	}
	r.mu.Unlock()
	if r.OnAccessChanged != nil {
		r.OnAccessChanged(id)
	}
	return creds, nil
}

// ParseTopic splits a device topic into the device id and what follows it,
// e.g. lookout/v1/devices/lamp-1/cmd/ack gives lamp-1 and cmd/ack.
func ParseTopic(topic string) (ID, string, bool) {
	rest, ok := strings.CutPrefix(topic, TopicRoot)
	if !ok {
		return "", "", false
	}
	id, leaf, ok := strings.Cut(rest, "/")
	if !ok || id == "" || leaf == "" {
		return "", "", false
	}
	return ID(id), leaf, true
}

package devices

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
)

// CommandState is where a command is in its life:
// pending -> sent -> acked | failed | timeout; pending -> expired.
type CommandState string

// Command states.
const (
	CommandPending CommandState = "pending" // accepted, not yet taken by the broker (or waiting for the device)
	CommandSent    CommandState = "sent"    // the broker has it (QoS 1); waiting for the device's ack
	CommandAcked   CommandState = "acked"   // the device did it
	CommandFailed  CommandState = "failed"  // the device said no, with its error
	CommandTimeout CommandState = "timeout" // no ack in time
	CommandExpired CommandState = "expired" // the device stayed offline until expires_at
)

// Done reports whether the state is final.
func (s CommandState) Done() bool { return s != CommandPending && s != CommandSent }

// Command is one command to one device.
type Command struct {
	ID        string          `json:"id"`
	DeviceID  ID              `json:"device_id"`
	OrgID     orgs.ID         `json:"org_id"`
	Name      string          `json:"name"`
	Params    json.RawMessage `json:"params"`
	State     CommandState    `json:"state"`
	Error     string          `json:"error,omitempty"`
	Queue     bool            `json:"queue"`
	TimeoutMS int64           `json:"timeout_ms"`
	CreatedBy string          `json:"created_by"`
	CreatedAt time.Time       `json:"created_at"`
	SentAt    *time.Time      `json:"sent_at,omitempty"`
	DoneAt    *time.Time      `json:"done_at,omitempty"`
	ExpiresAt time.Time       `json:"expires_at"`
}

// CommandRequest is what a caller asks for.
type CommandRequest struct {
	Name   string          `json:"name"`
	Params json.RawMessage `json:"params"`
	// TimeoutS is how long to wait for the ack once sent (default 10).
	TimeoutS int `json:"timeout_s"`
	// Queue: when the device is offline, wait for it until expires; false
	// refuses the command at once (409).
	Queue bool `json:"queue"`
	// ExpiresS is how long a queued command may wait (default 300).
	ExpiresS int `json:"expires_s"`
}

// CommandPublisher hands a command to the broker at QoS 1 and returns once
// the broker has it. The server gives the MQTT client.
type CommandPublisher interface {
	PublishCommand(device ID, payload []byte) error
}

// Auditor records steps in the audit log.
type Auditor interface {
	Record(ctx context.Context, actor string, org orgs.ID, action, target, result string, detail map[string]any) error
}

// Errors of commands.
var (
	ErrCommandNotFound = errclass.New(errclass.NotFound, "command_not_found", "command not found")
	ErrDeviceOffline   = errclass.New(errclass.Conflict, "device_offline", "the device is offline; send with queue: true to wait for it")
)

// Commands runs commands: it publishes them, follows their acks, and ends
// those that time out or expire. Active commands live in memory and in the
// database, so a restart loses none and their deadlines still apply.
//
// Lifecycle: NewCommands, Start, Close.
type Commands struct {
	db       *sql.DB
	reg      *Registry
	presence *Presence
	pub      CommandPublisher
	audit    Auditor
	log      *slog.Logger
	now      func() time.Time
	// OnChange is called after a command changes state.
	OnChange func(Command)
	// UnknownAcks counts acks for commands Lookout does not know.
	UnknownAcks func()

	mu     sync.Mutex
	active map[string]*Command
	// queued holds the commands waiting for (or in) a publisher, so that
	// one command is never handed to the broker twice at once.
	queued map[string]bool
	sendQ  chan string
	ackQ   chan ackMsg

	stop    chan struct{}
	done    chan struct{}
	workers sync.WaitGroup
}

// publishers is how many commands are handed to the broker at once; each
// waits for its PUBACK.
const publishers = 16

// NewCommands loads the active commands.
func NewCommands(ctx context.Context, db *sql.DB, reg *Registry, presence *Presence, pub CommandPublisher, audit Auditor, log *slog.Logger) (*Commands, error) {
	c := &Commands{db: db, reg: reg, presence: presence, pub: pub, audit: audit, log: log, now: time.Now,
		active: map[string]*Command{}, queued: map[string]bool{}, sendQ: make(chan string, 4096), ackQ: make(chan ackMsg, 4096),
		stop: make(chan struct{}), done: make(chan struct{})}
	rows, err := db.QueryContext(ctx, `SELECT `+commandColumns+` FROM commands WHERE state IN ('pending', 'sent')`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		cmd, err := scanCommand(rows)
		if err != nil {
			return nil, err
		}
		c.active[cmd.ID] = &cmd
	}
	return c, rows.Err()
}

const commandColumns = `id, device_id, org_id, name, params, state, error, queue, timeout_ms, created_by, created_at, sent_at, done_at, expires_at`

func scanCommand(row interface{ Scan(...any) error }) (Command, error) {
	var cmd Command
	var params string
	var created, expires int64
	var sent, done sql.NullInt64
	err := row.Scan(&cmd.ID, &cmd.DeviceID, &cmd.OrgID, &cmd.Name, &params, &cmd.State, &cmd.Error, &cmd.Queue, &cmd.TimeoutMS,
		&cmd.CreatedBy, &created, &sent, &done, &expires)
	cmd.Params = json.RawMessage(params)
	cmd.CreatedAt, cmd.ExpiresAt = time.UnixMilli(created).UTC(), time.UnixMilli(expires).UTC()
	if sent.Valid {
		t := time.UnixMilli(sent.Int64).UTC()
		cmd.SentAt = &t
	}
	if done.Valid {
		t := time.UnixMilli(done.Int64).UTC()
		cmd.DoneAt = &t
	}
	return cmd, err
}

// Start runs the deadline loop, the ack worker and the publishers.
func (c *Commands) Start() {
	go c.run()
	serve(c, c.ackQ, func(a ackMsg) { c.handleAck(a.device, a.body) })
	for i := 0; i < publishers; i++ {
		serve(c, c.sendQ, func(id string) {
			c.publish(id)
			c.mu.Lock()
			delete(c.queued, id)
			c.mu.Unlock()
		})
	}
}

// serve runs work on every item of ch, on a goroutine of c's, until Close.
func serve[T any](c *Commands, ch <-chan T, work func(T)) {
	c.workers.Add(1)
	go func() {
		defer c.workers.Done()
		for {
			select {
			case <-c.stop:
				return
			case v := <-ch:
				work(v)
			}
		}
	}()
}

// Close stops the deadline loop and the publishers; active commands stay
// in the database.
func (c *Commands) Close() {
	close(c.stop)
	<-c.done
	c.workers.Wait()
}

// enqueue hands a pending command to the publishers, unless it is with them
// already or they are all busy (then the deadline loop offers it again).
func (c *Commands) enqueue(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.queued[id] {
		return
	}
	select {
	case c.sendQ <- id:
		c.queued[id] = true
	default:
	}
}

// Send validates and records a command to a device inside scope, and
// publishes it at once when the device is online.
func (c *Commands) Send(ctx context.Context, scope orgs.Scope, actor string, id ID, req CommandRequest) (Command, error) {
	d, err := c.reg.GetDevice(scope, id)
	if err != nil {
		return Command{}, err
	}
	if err := CheckCommand(d.Kind, req.Name, req.Params); err != nil {
		return Command{}, err
	}
	if req.TimeoutS == 0 {
		req.TimeoutS = 10
	}
	if req.TimeoutS < 1 || req.TimeoutS > 600 {
		return Command{}, errclass.Invalidf("timeout_s", "must be 1 to 600")
	}
	if req.ExpiresS == 0 {
		req.ExpiresS = 300
	}
	if req.ExpiresS < 1 || req.ExpiresS > 7*24*3600 {
		return Command{}, errclass.Invalidf("expires_s", "must be 1 to 604800")
	}
	online := c.presence.Online(id)
	if !online && !req.Queue {
		_ = c.audit.Record(ctx, actor, d.OrgID, "command.send", string(id), "refused_offline", map[string]any{"name": req.Name})
		return Command{}, ErrDeviceOffline
	}
	params := req.Params
	if len(params) == 0 || string(params) == "null" {
		params = json.RawMessage("{}")
	}
	now := c.now().Truncate(time.Millisecond).UTC()
	expires := now.Add(time.Duration(req.TimeoutS) * time.Second)
	if req.Queue {
		expires = now.Add(time.Duration(req.ExpiresS) * time.Second)
	}
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	cmd := Command{ID: "cmd_" + hex.EncodeToString(b), DeviceID: id, OrgID: d.OrgID, Name: req.Name, Params: params,
		State: CommandPending, Queue: req.Queue, TimeoutMS: int64(req.TimeoutS) * 1000, CreatedBy: actor, CreatedAt: now, ExpiresAt: expires}
	_, err = c.db.ExecContext(ctx, `INSERT INTO commands(`+commandColumns+`) VALUES (?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, NULL, NULL, ?)`,
		cmd.ID, cmd.DeviceID, cmd.OrgID, cmd.Name, string(cmd.Params), cmd.State, cmd.Queue, cmd.TimeoutMS, cmd.CreatedBy,
		cmd.CreatedAt.UnixMilli(), cmd.ExpiresAt.UnixMilli())
	if err != nil {
		return Command{}, fmt.Errorf("store command: %w", err)
	}
	if err := c.audit.Record(ctx, actor, d.OrgID, "command.send", string(id), string(CommandPending),
		map[string]any{"command": cmd.ID, "name": cmd.Name, "params": cmd.Params, "queue": cmd.Queue}); err != nil {
		return Command{}, err
	}
	c.mu.Lock()
	c.active[cmd.ID] = &cmd
	c.mu.Unlock()
	if online {
		// The answer does not wait for the broker: the command is stored,
		// and GET /commands/{id} follows it to sent and acked.
		c.enqueue(cmd.ID)
	}
	return c.Get(scope, cmd.ID)
}

// payload is the command as the device receives it on its cmd topic.
type payload struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Params    json.RawMessage `json:"params"`
	ExpiresAt int64           `json:"expires_at"`
}

// publish hands a pending command to the broker and marks it sent.
func (c *Commands) publish(id string) {
	c.mu.Lock()
	cmd, ok := c.active[id]
	if !ok || cmd.State != CommandPending {
		c.mu.Unlock()
		return
	}
	msg, _ := json.Marshal(payload{ID: cmd.ID, Name: cmd.Name, Params: cmd.Params, ExpiresAt: cmd.ExpiresAt.UnixMilli()})
	dev := cmd.DeviceID
	c.mu.Unlock()
	if err := c.pub.PublishCommand(dev, msg); err != nil {
		c.log.Warn("command not handed to the broker; it stays pending until it expires", "command", id, "err", err)
		return
	}
	now := c.now().Truncate(time.Millisecond).UTC()
	c.transition(id, CommandSent, "", &now, "system")
}

// transition moves an active command to a new state, stores and audits it.
func (c *Commands) transition(id string, to CommandState, errText string, sentAt *time.Time, actor string) {
	c.mu.Lock()
	cmd, ok := c.active[id]
	if !ok || cmd.State.Done() || (to == CommandSent && cmd.State != CommandPending) {
		c.mu.Unlock()
		return
	}
	now := c.now().Truncate(time.Millisecond).UTC()
	cmd.State, cmd.Error = to, errText
	if sentAt != nil {
		cmd.SentAt = sentAt
	}
	if to.Done() {
		cmd.DoneAt = &now
		delete(c.active, id)
	}
	snapshot := *cmd
	c.mu.Unlock()

	var sent, done any
	if snapshot.SentAt != nil {
		sent = snapshot.SentAt.UnixMilli()
	}
	if snapshot.DoneAt != nil {
		done = snapshot.DoneAt.UnixMilli()
	}
	ctx := context.Background()
	// The write happens outside the lock, so two steps of one command (sent
	// and an ack that overtook it) may reach the database in either order;
	// a step only ever moves a command forward, never back from a final
	// state to sent.
	before := "state = 'pending'"
	if to.Done() {
		before = "state IN ('pending', 'sent')"
	}
	if _, err := c.db.ExecContext(ctx, `UPDATE commands SET state = ?, error = ?, sent_at = COALESCE(sent_at, ?), done_at = ? WHERE id = ? AND `+before,
		snapshot.State, snapshot.Error, sent, done, id); err != nil {
		c.log.Error("command state not stored", "command", id, "state", to, "err", err)
	}
	detail := map[string]any{"command": id, "name": snapshot.Name}
	if errText != "" {
		detail["error"] = errText
	}
	if err := c.audit.Record(ctx, actor, snapshot.OrgID, "command."+string(to), string(snapshot.DeviceID), string(to), detail); err != nil {
		c.log.Error("command step not audited", "command", id, "err", err)
	}
	if c.OnChange != nil {
		c.OnChange(snapshot)
	}
}

// Get returns a command inside scope.
func (c *Commands) Get(scope orgs.Scope, id string) (Command, error) {
	c.mu.Lock()
	if cmd, ok := c.active[id]; ok {
		snapshot := *cmd
		c.mu.Unlock()
		if !c.reg.orgs.Contains(scope, snapshot.OrgID) {
			return Command{}, orgs.ErrOutOfScope
		}
		return snapshot, nil
	}
	c.mu.Unlock()
	cmd, err := scanCommand(c.db.QueryRow(`SELECT `+commandColumns+` FROM commands WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Command{}, ErrCommandNotFound
	}
	if err != nil {
		return Command{}, err
	}
	if !c.reg.orgs.Contains(scope, cmd.OrgID) {
		return Command{}, orgs.ErrOutOfScope
	}
	return cmd, nil
}

// ack is what a device answers on its cmd/ack topic.
type ack struct {
	ID    string `json:"id"`
	OK    *bool  `json:"ok"`
	Error string `json:"error"`
}

// HandleAck takes a device's answer and returns at once: it runs on the
// MQTT client's message goroutine, which must not wait on the database
// (that would also hold up the broker's PUBACKs behind it). A repeated ack
// changes nothing; an ack for a command Lookout does not know (or of
// another device) is counted and ignored.
func (c *Commands) HandleAck(device ID, body []byte) {
	b := append([]byte(nil), body...)
	select {
	case c.ackQ <- ackMsg{device: device, body: b}:
	case <-c.stop:
	}
}

type ackMsg struct {
	device ID
	body   []byte
}

func (c *Commands) handleAck(device ID, body []byte) {
	var a ack
	if err := json.Unmarshal(body, &a); err != nil || a.ID == "" || a.OK == nil {
		c.countUnknown()
		return
	}
	c.mu.Lock()
	cmd, ok := c.active[a.ID]
	known := ok && cmd.DeviceID == device
	c.mu.Unlock()
	if !known {
		// A repeat of an ack already taken changes nothing; anything else
		// (no such command, or another device's) is counted.
		if done, err := c.Get(orgsAll(c.reg.orgs), a.ID); err != nil || done.DeviceID != device {
			c.countUnknown()
		}
		return
	}
	if *a.OK {
		c.transition(a.ID, CommandAcked, "", nil, "device:"+string(device))
	} else {
		if a.Error == "" {
			a.Error = "the device refused without a reason"
		}
		c.transition(a.ID, CommandFailed, truncateText(a.Error, 500), nil, "device:"+string(device))
	}
}

func (c *Commands) countUnknown() {
	if c.UnknownAcks != nil {
		c.UnknownAcks()
	}
}

func orgsAll(tree *orgs.Store) orgs.Scope {
	s, _ := tree.ScopeOf(tree.RootID())
	return s
}

func truncateText(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// DeviceOnline sends the commands queued for a device that just connected.
func (c *Commands) DeviceOnline(device ID) {
	c.mu.Lock()
	var ids []string
	for id, cmd := range c.active {
		if cmd.DeviceID == device && cmd.State == CommandPending {
			ids = append(ids, id)
		}
	}
	c.mu.Unlock()
	for _, id := range ids {
		c.enqueue(id)
	}
}

// deadlineTick is how often deadlines are checked.
const deadlineTick = 100 * time.Millisecond

func (c *Commands) run() {
	defer close(c.done)
	t := time.NewTicker(deadlineTick)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		now := c.now()
		type step struct {
			id string
			to CommandState
		}
		var steps []step
		var resend []string
		c.mu.Lock()
		for id, cmd := range c.active {
			switch {
			case cmd.State == CommandSent && now.After(cmd.SentAt.Add(time.Duration(cmd.TimeoutMS)*time.Millisecond)):
				steps = append(steps, step{id, CommandTimeout})
			case cmd.State == CommandPending && now.After(cmd.ExpiresAt):
				steps = append(steps, step{id, CommandExpired})
			case cmd.State == CommandPending && c.presence.Online(cmd.DeviceID):
				resend = append(resend, id) // e.g. the broker was down when it was made
			}
		}
		c.mu.Unlock()
		for _, s := range steps {
			c.transition(s.id, s.to, "", nil, "system")
		}
		for _, id := range resend {
			c.enqueue(id)
		}
	}
}

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

	"github.com/lookout-cc/lookout/internal/audit"
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
	// GroupID is the group command this one is part of, if any.
	GroupID string `json:"group_id,omitempty"`

	// handedAt is when the command was last handed to the broker, set
	// before the hand-over returns: the device's ack may come back through
	// the broker before the publisher's PUBACK does, and so before the
	// step to sent is taken. Such an ack takes it as the command's sent_at.
	handedAt time.Time
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

// InProcessPublisher is a CommandPublisher that takes a command in process
// without waiting on the network (the embedded broker queues it for the
// device's connection): new commands are handed to it by the goroutine
// that stored them, rather than through the publishers, whose hand-over
// cost more than the publish itself under a burst.
type InProcessPublisher interface {
	CommandPublisher
	InProcess() bool
}

// Auditor records steps in the audit log, one at a time or many in one
// transaction with the caller's own writes (*audit.Log).
type Auditor interface {
	Record(ctx context.Context, actor string, org orgs.ID, action, target, result string, detail map[string]any) error
	InTx(ctx context.Context, fn func(tx *sql.Tx, add func(audit.Rec)) error) error
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
	// OnChange is called after a command's step is stored (a step to sent:
	// when it is taken, see sentLinger), on the journal writer's
	// goroutine: it must be quick and must not call Commands.
	OnChange func(Command)
	// UnknownAcks counts acks for commands Lookout does not know.
	UnknownAcks func()

	mu     sync.Mutex
	active map[string]*Command
	// recent holds the newest commands that ended, oldest first out, so
	// that following a command to its end, a repeated ack, or a group's
	// summary is answered from memory rather than by the database's one
	// connection, which the journal writer keeps busy under a burst.
	recent      map[string]*Command
	recentOrder []string // ring of recent's ids
	recentNext  int
	// groups holds the command ids of the newest groups (a ring of
	// groupOrder), for GetGroup.
	groups     map[string][]string
	groupOrder []string
	groupNext  int
	// queued holds the commands waiting for (or in) a publisher, so that
	// one command is never handed to the broker twice at once.
	queued map[string]bool
	sendQ  chan string
	ackQ   chan ackMsg
	// writes carries every step to the journal writer, which stores many
	// steps and their audit entries in one transaction (group commit).
	// stored carries the new commands an API call waits for: the writer
	// takes them first, so that under a burst the commands are stored and
	// sent while the steps of those already acked wait a little.
	writes chan write
	stored chan write
	// The journal's statements, a row each: one statement of many rows
	// costs more here (audit.Log.InTx says why).
	stmts struct {
		insert, latest, update, requeue *sql.Stmt
	}
	writerStop chan struct{}
	writerDone chan struct{}

	stop    chan struct{}
	done    chan struct{}
	workers sync.WaitGroup
}

// publishers is how many commands are handed to the broker at once; each
// waits for its PUBACK, so this is the depth of the pipeline to the broker.
const publishers = 64

// recentSize is how many ended commands are kept in memory.
const recentSize = 1 << 15

// maxBatch bounds the steps stored in one transaction.
const maxBatch = 2048

// maxUrgent bounds a transaction of new commands only, so that a large
// group is stored in several commits and its first commands are sent
// while the rest are being stored.
const maxUrgent = 256

// NewCommands loads the active commands.
func NewCommands(ctx context.Context, db *sql.DB, reg *Registry, presence *Presence, pub CommandPublisher, audit Auditor, log *slog.Logger) (*Commands, error) {
	c := &Commands{db: db, reg: reg, presence: presence, pub: pub, audit: audit, log: log, now: time.Now,
		active: map[string]*Command{}, queued: map[string]bool{}, recent: map[string]*Command{}, recentOrder: make([]string, recentSize),
		groups: map[string][]string{}, groupOrder: make([]string, recentGroups), sendQ: make(chan string, 4096), ackQ: make(chan ackMsg, 4096),
		writes: make(chan write, 8192), stored: make(chan write, 8192), writerStop: make(chan struct{}), writerDone: make(chan struct{}),
		stop: make(chan struct{}), done: make(chan struct{})}
	var err error
	if c.stmts.insert, err = db.PrepareContext(ctx, `INSERT INTO commands(`+commandColumns+`) VALUES (?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, NULL, NULL, ?, ?)`); err != nil {
		return nil, fmt.Errorf("commands: %w", err)
	}
	if c.stmts.latest, err = db.PrepareContext(ctx, `INSERT INTO command_latest(device_id, name, command_id) VALUES (?, ?, ?)
			ON CONFLICT(device_id, name) DO UPDATE SET command_id = excluded.command_id`); err != nil {
		return nil, fmt.Errorf("commands: %w", err)
	}
	// A step's row: state, error, sent_at (kept when set), done_at, id,
	// and whether a sent command may take it (an ack, a timeout).
	// SQLite's UPDATE ... FROM (VALUES ...) of many rows builds a
	// temporary table each time, which cost twice the update.
	if c.stmts.update, err = db.PrepareContext(ctx, `UPDATE commands SET state = ?, error = ?, sent_at = COALESCE(sent_at, ?), done_at = ?
			WHERE id = ? AND (state = 'pending' OR (state = 'sent' AND ?))`); err != nil {
		return nil, fmt.Errorf("commands: %w", err)
	}
	if c.stmts.requeue, err = db.PrepareContext(ctx, `UPDATE commands SET state = 'pending', sent_at = NULL WHERE id = ? AND state IN ('pending', 'sent')`); err != nil {
		return nil, fmt.Errorf("commands: %w", err)
	}
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

const commandColumns = `id, device_id, org_id, name, params, state, error, queue, timeout_ms, created_by, created_at, sent_at, done_at, expires_at, group_id`

// The values of a new command's row and of a step's (flush).
const (
	insertColumns = 12
	updateColumns = 6
	latestColumns = 3
)

func scanCommand(row interface{ Scan(...any) error }) (Command, error) {
	var cmd Command
	var params string
	var created, expires int64
	var sent, done sql.NullInt64
	err := row.Scan(&cmd.ID, &cmd.DeviceID, &cmd.OrgID, &cmd.Name, &params, &cmd.State, &cmd.Error, &cmd.Queue, &cmd.TimeoutMS,
		&cmd.CreatedBy, &created, &sent, &done, &expires, &cmd.GroupID)
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

// Start runs the journal writer, the deadline loop, the ack worker and the
// publishers.
func (c *Commands) Start() {
	go c.writeJournal()
	go c.run()
	serve(c, c.ackQ, func(m ackMsg) { c.handleOtherAck(m.device, m.ack) })
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

// Close stops the deadline loop and the publishers, then stores the steps
// still on their way to the database; active commands stay there.
func (c *Commands) Close() {
	close(c.stop)
	<-c.done
	c.workers.Wait()
	close(c.writerStop)
	<-c.writerDone
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
	if d.Disabled {
		return Command{}, ErrDeviceDisabled
	}
	if err := req.check(); err != nil {
		return Command{}, err
	}
	if err := CheckCommand(d.Kind, req.Name, req.Params); err != nil {
		return Command{}, err
	}
	cmd, w, err := c.prepare(d, actor, req, "")
	if err != nil {
		if w.rec.Action != "" { // a refusal the audit log keeps
			if serr := c.store([]write{w}); serr != nil {
				return Command{}, serr
			}
		}
		return Command{}, err
	}
	if err := c.store([]write{w}); err != nil {
		return Command{}, err
	}
	c.activate([]*Command{&cmd})
	return c.Get(scope, cmd.ID)
}

// check fills in the defaults of a request and checks its numbers.
func (req *CommandRequest) check() error {
	if req.TimeoutS == 0 {
		req.TimeoutS = 10
	}
	if req.TimeoutS < 1 || req.TimeoutS > 600 {
		return errclass.Invalidf("timeout_s", "must be 1 to 600")
	}
	if req.ExpiresS == 0 {
		req.ExpiresS = 300
	}
	if req.ExpiresS < 1 || req.ExpiresS > 7*24*3600 {
		return errclass.Invalidf("expires_s", "must be 1 to 604800")
	}
	if len(req.Params) == 0 || string(req.Params) == "null" {
		req.Params = json.RawMessage("{}")
	}
	return nil
}

// prepare makes the command for one device, or refuses it: the device is
// disabled, or offline and the request does not queue. The refusal of an
// offline device comes with an audit entry for the caller to store.
func (c *Commands) prepare(d Device, actor string, req CommandRequest, group string) (Command, write, error) {
	if d.Disabled {
		return Command{}, write{}, ErrDeviceDisabled
	}
	if !req.Queue && !c.presence.Online(d.ID) {
		return Command{}, write{rec: audit.Rec{Actor: actor, OrgID: d.OrgID, Action: "command.send", Target: string(d.ID),
			Result: "refused_offline", Detail: map[string]any{"name": req.Name}}}, ErrDeviceOffline
	}
	now := c.now().Truncate(time.Millisecond).UTC()
	expires := now.Add(time.Duration(req.TimeoutS) * time.Second)
	if req.Queue {
		expires = now.Add(time.Duration(req.ExpiresS) * time.Second)
	}
	cmd := Command{ID: newID("cmd_"), DeviceID: d.ID, OrgID: d.OrgID, Name: req.Name, Params: req.Params, State: CommandPending,
		Queue: req.Queue, TimeoutMS: int64(req.TimeoutS) * 1000, CreatedBy: actor, CreatedAt: now, ExpiresAt: expires, GroupID: group}
	detail := map[string]any{"command": cmd.ID, "name": cmd.Name, "params": cmd.Params, "queue": cmd.Queue}
	if group != "" {
		detail["group"] = group
	}
	w := write{cmd: cmd, insert: true, rec: audit.Rec{Actor: actor, OrgID: d.OrgID, Action: "command.send",
		Target: string(d.ID), Result: string(CommandPending), Detail: detail}}
	return cmd, w, nil
}

// newID is prefix and 24 hex digits: the time in milliseconds (six bytes),
// then six random bytes. Ids made later sort later, so a new command's key
// goes at the end of the id index, whose last page a burst of commands
// shares, instead of on a random page of it each (a page write each per
// commit, which cost more than the rest of the row). Six random bytes
// keep ids of one millisecond apart (and unguessable enough: an id is no
// credential, access is checked by organisation).
func newID(prefix string) string {
	var b [12]byte
	ms := time.Now().UnixMilli()
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	_, _ = rand.Read(b[6:])
	return prefix + hex.EncodeToString(b[:])
}

// store hands new commands to the journal writer and returns once they
// and their audit entries are stored (with other steps in one commit): a
// command the API accepted survives a restart.
func (c *Commands) store(ws []write) error {
	return c.submit(ws)()
}

// submit hands writes to the journal writer and returns a function that
// waits until all of them are stored. Neither watches the request's
// context: the writer answers every write within a commit, and a command
// stored after its caller left must still be made active.
func (c *Commands) submit(ws []write) (wait func() error) {
	done := make(chan error, len(ws))
	for i := range ws {
		ws[i].done = done
		c.stored <- ws[i]
	}
	return func() error {
		var first error
		for range ws {
			if err := <-done; err != nil && first == nil {
				first = fmt.Errorf("store command: %w", err)
			}
		}
		return first
	}
}

// activate makes stored commands active and hands those whose device is
// online to the broker: at once when it takes them in process, otherwise
// to the publishers. The API's answer does not wait for the device:
// GET /commands/{id} follows each to sent and acked.
func (c *Commands) activate(cmds []*Command) {
	c.mu.Lock()
	for _, cmd := range cmds {
		c.active[cmd.ID] = cmd
	}
	c.mu.Unlock()
	inProcess := false
	if p, ok := c.pub.(InProcessPublisher); ok {
		inProcess = p.InProcess()
	}
	for _, cmd := range cmds {
		switch {
		case !c.presence.Online(cmd.DeviceID):
		case inProcess:
			c.publish(cmd.ID)
		default:
			c.enqueue(cmd.ID)
		}
	}
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
	dev, queued := cmd.DeviceID, cmd.Queue
	cmd.handedAt = c.now().Truncate(time.Millisecond).UTC()
	c.mu.Unlock()
	if err := c.pub.PublishCommand(dev, msg); err != nil {
		c.log.Warn("command not handed to the broker; it stays pending until it expires", "command", id, "err", err)
		return
	}
	if queued && !c.presence.Online(dev) {
		return // the device left meanwhile: the command waits for it, pending
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
	} else if cmd.SentAt == nil && (to == CommandAcked || to == CommandFailed) && !cmd.handedAt.IsZero() {
		handed := cmd.handedAt // acked before the step to sent was taken
		cmd.SentAt = &handed
	}
	if to.Done() {
		cmd.DoneAt = &now
		delete(c.active, id)
		c.remember(cmd)
	}
	snapshot := *cmd
	// The step is stored by the journal writer, with others in one
	// transaction; memory is ahead of the database by at most one commit.
	// It is queued under the lock, so the steps of one command reach the
	// database and the audit log in the order they were taken.
	w := write{cmd: snapshot}
	if to != CommandSent {
		// The audit log has each command as it was asked for and as it
		// ended (and any requeue); the hand-over to the broker, a step of
		// the system's own, is the command's sent_at.
		// The entry names who asked for the command, so that an entry
		// read alone tells it. A group's command has no entry of its own
		// as asked for (the group's entry lists it, SendGroup): its end
		// says what was asked too.
		detail := map[string]any{"command": id, "name": snapshot.Name, "by": snapshot.CreatedBy}
		if errText != "" {
			detail["error"] = errText
		}
		if snapshot.GroupID != "" {
			detail["group"] = snapshot.GroupID
			detail["params"] = snapshot.Params
		}
		w.rec = audit.Rec{Actor: actor, OrgID: snapshot.OrgID, Action: "command." + string(to),
			Target: string(snapshot.DeviceID), Result: string(to), Detail: detail}
	}
	c.writes <- w
	c.mu.Unlock()
}

// write is one step of a command on its way to the database: the row as
// it is after the step, and the step's audit entry.
type write struct {
	cmd    Command
	insert bool // a new command; otherwise an update of its state
	rec    audit.Rec
	done   chan error // told when stored, if not nil
}

// sentLinger is how long the step to sent may wait for the command's next
// step before it is stored on its own. Most commands are acked within
// milliseconds of being sent, so under a burst one UPDATE stores both
// steps instead of two. Should Lookout stop hard meanwhile, the command
// is loaded as pending and sent again (the device tells a repeat by its
// id); its deadlines still apply.
const sentLinger = 250 * time.Millisecond

// stepGather is how long steps that nobody waits for (acks, timeouts,
// their audit entries) may wait for others before they are stored, when
// fewer than gatherBelow are waiting. A commit writes every page it
// changed to the write-ahead log, two system calls a page, and the pages
// a few steps change (the audit log's last, the indexes') are nearly as
// many as a few hundred steps change: acks that come one by one were
// stored in commits of one or two, and writing those pages cost more
// than a seventh of the server's CPU under a burst of commands. The step
// is in memory meanwhile, and what the API answers comes from there.
// Should Lookout stop hard in that window, the command is loaded as it
// was before the step (sent again, and the device tells a repeat by its
// id), as for sentLinger.
const (
	stepGather  = 10 * time.Millisecond
	gatherBelow = 256
)

// writeJournal stores steps until Close, taking as many as are waiting
// into one transaction: under a burst, thousands of steps share a commit
// instead of each paying for its own.
func (c *Commands) writeJournal() {
	defer close(c.writerDone)
	batch := make([]write, 0, maxBatch)
	// lingering holds steps to sent that wait for their command's next
	// step (see sentLinger); lingerDue fires when the oldest is due.
	lingering := map[string]write{}
	var lingerDue <-chan time.Time
	urgentRun := 0
	gather := time.NewTimer(stepGather)
	gather.Stop()
	for {
		batch = batch[:0]
		stopping, fired := false, false
		select {
		case w := <-c.stored:
			batch = append(batch, w)
		default:
			select {
			case w := <-c.stored:
				batch = append(batch, w)
			case w := <-c.writes:
				batch = append(batch, w)
			case <-lingerDue:
				fired = true
			case <-c.writerStop:
				stopping = true // what is queued is still stored before Close returns
			}
		}
		// What API calls wait for first: the other steps join the batch
		// only when no such write is waiting. No step of a command can be
		// in writes before its insert is stored, so the order of one
		// command's steps holds.
	urgent:
		for len(batch) < maxUrgent {
			select {
			case w := <-c.stored:
				batch = append(batch, w)
			default:
				break urgent
			}
		}
		if len(batch) > 0 && batch[0].done != nil && !stopping && urgentRun < 8 {
			urgentRun++ // bounded, so that a stream of new commands never starves the other steps
			c.flush(batch)
			continue
		}
		urgentRun = 0
		// Steps nobody waits for gather a while into one commit (see
		// stepGather), until a new command comes, the batch is full, or
		// Close: what is waiting then is taken below.
		if !stopping && !fired && len(batch) > 0 && len(batch) < gatherBelow && !waitedFor(batch) {
			gather.Reset(stepGather)
		gathering:
			for len(batch) < gatherBelow {
				select {
				case w := <-c.stored:
					batch = append(batch, w)
					break gathering
				case w := <-c.writes:
					batch = append(batch, w)
				case <-gather.C:
					break gathering
				case <-c.writerStop:
					stopping = true
					break gathering
				}
			}
			gather.Stop()
		}
	more:
		for len(batch) < maxBatch {
			select {
			case w := <-c.stored:
				batch = append(batch, w)
			case w := <-c.writes:
				batch = append(batch, w)
			default:
				break more
			}
		}
		// A later step of a command supersedes its lingering sent step
		// (an update carries every field the earlier ones set); a new
		// sent step lingers.
		kept := batch[:0]
		for _, w := range batch {
			switch {
			case lingers(w):
				lingering[w.cmd.ID] = w
				if c.OnChange != nil {
					c.OnChange(w.cmd)
				}
			default:
				delete(lingering, w.cmd.ID)
				kept = append(kept, w)
			}
		}
		batch = kept
		if stopping || fired || len(lingering) >= maxBatch {
			for id, w := range lingering {
				batch = append(batch, w)
				delete(lingering, id)
			}
			lingerDue = nil
		}
		if len(lingering) > 0 && lingerDue == nil {
			lingerDue = time.After(sentLinger)
		}
		if len(batch) > 0 {
			c.flush(batch)
		}
		if stopping {
			return
		}
	}
}

// waitedFor tells whether an API call waits for a write of batch.
func waitedFor(batch []write) bool {
	for _, w := range batch {
		if w.done != nil {
			return true
		}
	}
	return false
}

// lingers tells a step to sent that may wait for the command's next step:
// it has no audit entry and nobody waits for it.
func lingers(w write) bool {
	return !w.insert && w.done == nil && w.rec.Action == "" && w.cmd.State == CommandSent
}

// flush stores a batch of steps and their audit entries in one
// transaction. Of several updates of one command in the batch only the
// last is written: it carries every field the earlier ones set. An update
// only ever moves a command forward, never back from a final state.
func (c *Commands) flush(batch []write) {
	last := make(map[string]int, len(batch))
	for i, w := range batch {
		if !w.insert {
			last[w.cmd.ID] = i
		}
	}
	ctx := context.Background()
	err := c.audit.InTx(ctx, func(tx *sql.Tx, add func(audit.Rec)) error {
		// New commands first, then each command's last step: a command is
		// made before any of its steps, and only its last step counts.
		var inserts, latest, requeues, updates []any
		for i, w := range batch {
			cmd := w.cmd
			switch {
			case cmd.ID == "":
				// an audit entry alone, such as a group's request
			case w.insert:
				// Values of the driver's own types (string, not ID): others
				// are converted through reflection, value by value.
				inserts = append(inserts, cmd.ID, string(cmd.DeviceID), string(cmd.OrgID), cmd.Name, string(cmd.Params), string(cmd.State), cmd.Queue,
					cmd.TimeoutMS, cmd.CreatedBy, cmd.CreatedAt.UnixMilli(), cmd.ExpiresAt.UnixMilli(), cmd.GroupID)
				latest = append(latest, string(cmd.DeviceID), cmd.Name, cmd.ID)
			case last[cmd.ID] == i && cmd.State == CommandPending:
				// back from sent: the device left before acking
				requeues = append(requeues, cmd.ID)
			case last[cmd.ID] == i:
				var sent, done any
				if cmd.SentAt != nil {
					sent = cmd.SentAt.UnixMilli()
				}
				if cmd.DoneAt != nil {
					done = cmd.DoneAt.UnixMilli()
				}
				updates = append(updates, string(cmd.State), cmd.Error, sent, done, cmd.ID, cmd.State.Done())
			}
			if w.rec.Action != "" {
				add(w.rec)
			}
		}
		for _, rows := range []struct {
			stmt *sql.Stmt
			cols int
			args []any
		}{
			{c.stmts.insert, insertColumns, inserts},
			{c.stmts.latest, latestColumns, latest},
			{c.stmts.requeue, 1, requeues},
			{c.stmts.update, updateColumns, updates},
		} {
			stmt := tx.StmtContext(ctx, rows.stmt)
			for args := rows.args; len(args) > 0; args = args[rows.cols:] {
				if _, err := stmt.ExecContext(ctx, args[:rows.cols]...); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		c.log.Error("command steps not stored", "steps", len(batch), "err", err)
	}
	for _, w := range batch {
		if w.done != nil {
			w.done <- err
		}
		if err == nil && c.OnChange != nil && w.cmd.ID != "" && !lingers(w) {
			c.OnChange(w.cmd)
		}
	}
}

// remember keeps an ended command in recent, dropping the oldest.
func (c *Commands) remember(cmd *Command) {
	if old := c.recentOrder[c.recentNext]; old != "" {
		delete(c.recent, old)
	}
	c.recentOrder[c.recentNext] = cmd.ID
	c.recent[cmd.ID] = cmd
	c.recentNext = (c.recentNext + 1) % len(c.recentOrder)
}

// inMemory returns a command that is active or recently ended; c.mu held.
func (c *Commands) inMemory(id string) (*Command, bool) {
	if cmd, ok := c.active[id]; ok {
		return cmd, true
	}
	cmd, ok := c.recent[id]
	return cmd, ok
}

// Get returns a command inside scope.
func (c *Commands) Get(scope orgs.Scope, id string) (Command, error) {
	c.mu.Lock()
	if cmd, ok := c.inMemory(id); ok {
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

// HandleAck takes a device's answer. It runs on the MQTT client's message
// goroutine, which must not wait on the database (that would also hold up
// the broker's PUBACKs behind it): an ack of an active command is taken
// at once, in memory (its step is queued for the journal writer); any
// other ack goes to a worker, which may have to look in the database. A
// repeated ack changes nothing; an ack for a command Lookout does not know
// (or of another device) is counted and ignored.
func (c *Commands) HandleAck(device ID, body []byte) {
	var a ack
	if err := json.Unmarshal(body, &a); err != nil || a.ID == "" || a.OK == nil {
		c.countUnknown()
		return
	}
	if c.takeAck(device, a) {
		return
	}
	select {
	case c.ackQ <- ackMsg{device: device, ack: a}:
	case <-c.stop:
	}
}

type ackMsg struct {
	device ID
	ack    ack
}

// takeAck ends the active command an ack is for, and reports whether
// there was one.
func (c *Commands) takeAck(device ID, a ack) bool {
	c.mu.Lock()
	cmd, ok := c.active[a.ID]
	known := ok && cmd.DeviceID == device
	c.mu.Unlock()
	if !known {
		return false
	}
	if *a.OK {
		c.transition(a.ID, CommandAcked, "", nil, "device:"+string(device))
	} else {
		if a.Error == "" {
			a.Error = "the device refused without a reason"
		}
		c.transition(a.ID, CommandFailed, truncateText(a.Error, 500), nil, "device:"+string(device))
	}
	return true
}

// handleOtherAck takes an ack of no active command, on the ack worker.
func (c *Commands) handleOtherAck(device ID, a ack) {
	if c.takeAck(device, a) {
		return // it became active meanwhile (a command is activated after it is stored)
	}
	// A repeat of an ack already taken changes nothing; anything else (no
	// such command, or another device's) is counted.
	if done, err := c.Get(orgsAll(c.reg.orgs), a.ID); err != nil || done.DeviceID != device {
		c.countUnknown()
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

// DeviceOffline puts back the queued commands a device took but did not
// ack before it went offline: they are sent again when it is back (the
// device tells a repeat by its id), until they expire. A command that was
// not queued keeps waiting for its ack and ends timeout.
func (c *Commands) DeviceOffline(device ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for id, cmd := range c.active {
		if cmd.DeviceID != device || cmd.State != CommandSent || !cmd.Queue || now.After(cmd.ExpiresAt) {
			continue
		}
		cmd.State, cmd.SentAt = CommandPending, nil
		c.writes <- write{cmd: *cmd, rec: audit.Rec{Actor: "system", OrgID: cmd.OrgID, Action: "command.requeued", Target: string(device),
			Result: string(CommandPending), Detail: map[string]any{"command": id, "name": cmd.Name, "reason": "the device went offline before acking"}}}
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

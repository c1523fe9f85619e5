package devices

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/lookout-cc/lookout/internal/audit"
	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
)

// GroupRequest is one command for many devices: every device of a site
// that takes it (optionally only those of one kind), or a list of devices.
type GroupRequest struct {
	CommandRequest
	SiteID    SiteID `json:"site_id"`
	Kind      string `json:"kind"`
	DeviceIDs []ID   `json:"device_ids"`
}

// maxGroup bounds the devices of one group command.
const maxGroup = 5000

// groupChunk is how many of a group's commands are stored in one go
// before they are handed to the publishers.
const groupChunk = 128

// recentGroups is how many groups' command ids are kept in memory, so
// that following a recent group is answered without the database.
const recentGroups = 1024

// Group is a group command: a result per device and a summary.
type Group struct {
	ID      string        `json:"id"`
	Name    string        `json:"name"`
	Summary GroupSummary  `json:"summary"`
	Results []GroupMember `json:"results"`
}

// GroupMember is the result for one device: its command, or why it was
// refused.
type GroupMember struct {
	DeviceID ID           `json:"device_id"`
	Command  *Command     `json:"command,omitempty"`
	Refused  *MemberError `json:"refused,omitempty"`
}

// MemberError is why one device of a group got no command.
type MemberError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// GroupSummary counts a group's devices by where their commands are.
type GroupSummary struct {
	Devices int `json:"devices"`
	Refused int `json:"refused"`
	Pending int `json:"pending"`
	Sent    int `json:"sent"`
	Acked   int `json:"acked"`
	Failed  int `json:"failed"`
	Timeout int `json:"timeout"`
	Expired int `json:"expired"`
	// Done: every command of the group has reached a final state.
	Done bool `json:"done"`
}

func summarize(g *Group) {
	s := GroupSummary{Devices: len(g.Results), Done: true}
	for _, m := range g.Results {
		if m.Command == nil {
			s.Refused++
			continue
		}
		switch m.Command.State {
		case CommandPending:
			s.Pending++
		case CommandSent:
			s.Sent++
		case CommandAcked:
			s.Acked++
		case CommandFailed:
			s.Failed++
		case CommandTimeout:
			s.Timeout++
		case CommandExpired:
			s.Expired++
		}
		s.Done = s.Done && m.Command.State.Done()
	}
	g.Summary = s
}

// SendGroup sends one command to many devices inside scope. Devices that
// cannot take it (unknown, outside scope, disabled, offline without queue,
// or of a kind without this command) are refused one by one and the others
// still get theirs. The request as a whole is refused (422) when it selects
// no device, or when every device refuses the command as invalid, so a
// parameter out of range is named as it is for one device.
func (c *Commands) SendGroup(ctx context.Context, scope orgs.Scope, actor string, req GroupRequest) (Group, error) {
	if err := req.check(); err != nil {
		return Group{}, err
	}
	targets, err := c.groupTargets(ctx, scope, req)
	if err != nil {
		return Group{}, err
	}
	g := Group{ID: newID("grp_"), Name: req.Name, Results: make([]GroupMember, len(targets))}
	var ws []write
	var cmds []*Command
	var firstInvalid error
	invalid := 0
	checked := map[string]error{} // by kind: the command and its parameters are the same for every target
	members := make(map[string]string, len(targets))
	for i, t := range targets {
		g.Results[i].DeviceID = t.id
		err := t.err
		var cmd Command
		var w write
		if err == nil {
			var seen bool
			if err, seen = checked[t.dev.Kind]; !seen {
				err = CheckCommand(t.dev.Kind, req.Name, req.Params)
				checked[t.dev.Kind] = err
			}
		}
		if err == nil {
			cmd, w, err = c.prepare(t.dev, actor, req.CommandRequest, g.ID)
		}
		if err != nil {
			if w.rec.Action != "" {
				ws = append(ws, w) // stored with the group's commands
			}
			g.Results[i].Refused = memberError(err)
			if errclass.KindOf(err) == errclass.Invalid {
				invalid++
				firstInvalid = firstErr(firstInvalid, err)
			}
			continue
		}
		// The group's entry lists its commands, device by device, in
		// place of an entry for each as asked for: under a burst that
		// entry was a fifth of the journal's work on the way to the
		// devices, and each command's end has an entry of its own that
		// names who asked, what and the group (transition).
		w.rec = audit.Rec{}
		members[string(t.id)] = cmd.ID
		ws = append(ws, w)
		cmds = append(cmds, &cmd)
		g.Results[i].Command = &cmd
	}
	if invalid == len(targets) {
		return Group{}, firstInvalid
	}
	org := scope.Root()
	if req.SiteID != "" {
		org = targets[0].dev.OrgID // a site's devices are of the site's organisation
	}
	// The group's own entry goes first: whatever part of the group is
	// stored, the audit log has the request.
	ws = append([]write{{rec: audit.Rec{Actor: actor, OrgID: org, Action: "command.group", Target: g.ID,
		Result: "accepted", Detail: map[string]any{"name": req.Name, "params": req.Params, "queue": req.Queue, "site": req.SiteID, "devices": len(targets),
			"accepted": len(cmds), "refused": len(targets) - len(cmds), "commands": members}}}}, ws...)
	// The answer shows the commands as accepted; GET /command-groups/{id}
	// follows them.
	for i := range g.Results {
		if m := &g.Results[i]; m.Command != nil {
			snapshot := *m.Command
			m.Command = &snapshot
		}
	}
	c.rememberGroup(g.ID, cmds)
	// Stored and handed to the publishers a chunk at a time: all chunks go
	// to the journal writer at once, and each is activated as soon as it
	// is stored, so the first devices get theirs while the rest are being
	// stored. Should storing fail for a chunk (the disk is full), the
	// chunks stored still go out (each command is whole with its audit
	// entry) and the error says how many did.
	var waits []func() error
	var chunks [][]write
	for len(ws) > 0 {
		n := min(len(ws), groupChunk)
		waits, chunks, ws = append(waits, c.submit(ws[:n])), append(chunks, ws[:n]), ws[n:]
	}
	next, stored := 0, 0 // the inserts in ws are in cmds' order; cmds[next] is the next
	var storeErr error
	for i, wait := range waits {
		inserts := 0
		for _, w := range chunks[i] {
			if w.insert {
				inserts++
			}
		}
		if err := wait(); err != nil {
			storeErr = firstErr(storeErr, err)
		} else {
			c.activate(cmds[next : next+inserts])
			stored += inserts
		}
		next += inserts
	}
	if storeErr != nil {
		return Group{}, fmt.Errorf("group %s: %d of %d commands stored and sent: %w", g.ID, stored, len(cmds), storeErr)
	}
	summarize(&g)
	return g, nil
}

func firstErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

type groupTarget struct {
	id  ID
	dev Device
	err error
}

// groupTargets resolves a group request to its devices, in id order.
func (c *Commands) groupTargets(ctx context.Context, scope orgs.Scope, req GroupRequest) ([]groupTarget, error) {
	switch {
	case req.SiteID != "" && len(req.DeviceIDs) > 0:
		return nil, errclass.Invalidf("site_id", "give site_id or device_ids, not both")
	case req.SiteID != "":
		if _, err := c.reg.GetSite(ctx, scope, req.SiteID); err != nil {
			return nil, err
		}
		if req.Kind != "" && !slices.Contains(Kinds, req.Kind) {
			return nil, errclass.Invalidf("kind", "must be one of %v", Kinds)
		}
		var out []groupTarget
		for _, d := range c.reg.ListDevices(scope, req.SiteID) {
			_, takes := Catalogue[d.Kind][req.Name]
			if (req.Kind == "" && takes) || d.Kind == req.Kind {
				out = append(out, groupTarget{id: d.ID, dev: d})
			}
		}
		if len(out) == 0 {
			return nil, errclass.Invalidf("site_id", "the site has no device that takes %q", req.Name)
		}
		if len(out) > maxGroup {
			return nil, errclass.Invalidf("site_id", "the site has %d such devices; one group takes at most %d", len(out), maxGroup)
		}
		return out, nil
	case len(req.DeviceIDs) > 0:
		if len(req.DeviceIDs) > maxGroup {
			return nil, errclass.Invalidf("device_ids", "at most %d devices", maxGroup)
		}
		ids := slices.Clone(req.DeviceIDs)
		slices.Sort(ids)
		ids = slices.Compact(ids)
		out := make([]groupTarget, len(ids))
		for i, id := range ids {
			d, err := c.reg.GetDevice(scope, id)
			out[i] = groupTarget{id: id, dev: d, err: err}
		}
		return out, nil
	default:
		return nil, errclass.Invalidf("site_id", "give site_id or device_ids")
	}
}

func memberError(err error) *MemberError {
	var e *errclass.Error
	if errors.As(err, &e) {
		msg := e.Message
		if e.Field != "" {
			msg = e.Field + ": " + msg
		}
		return &MemberError{Code: e.Code, Message: msg}
	}
	return &MemberError{Code: "internal", Message: "internal error"}
}

// ErrGroupNotFound answers for a group that does not exist or has no
// command inside the caller's scope.
var ErrGroupNotFound = errclass.New(errclass.NotFound, "group_not_found", "command group not found")

// GetGroup returns the commands of a group inside scope, each as it is
// now, with a summary. Devices refused when the group was sent are not
// listed: they have no command (the audit log keeps the request).
func (c *Commands) GetGroup(ctx context.Context, scope orgs.Scope, id string) (Group, error) {
	if g, ok := c.groupInMemory(scope, id); ok {
		return g, nil
	}
	rows, err := c.db.QueryContext(ctx, `SELECT `+commandColumns+` FROM commands WHERE group_id = ? ORDER BY device_id`, id)
	if err != nil {
		return Group{}, err
	}
	defer rows.Close()
	g := Group{ID: id, Results: []GroupMember{}}
	for rows.Next() {
		cmd, err := scanCommand(rows)
		if err != nil {
			return Group{}, fmt.Errorf("group %s: %w", id, err)
		}
		if !c.reg.orgs.Contains(scope, cmd.OrgID) {
			continue
		}
		c.mu.Lock()
		if a, ok := c.inMemory(cmd.ID); ok {
			cmd = *a // the database is behind memory by up to one commit
		}
		c.mu.Unlock()
		g.Name = cmd.Name
		g.Results = append(g.Results, GroupMember{DeviceID: cmd.DeviceID, Command: &cmd})
	}
	if err := rows.Err(); err != nil {
		return Group{}, err
	}
	if len(g.Results) == 0 {
		return Group{}, ErrGroupNotFound
	}
	summarize(&g)
	return g, nil
}

// rememberGroup keeps the ids of a group's commands, in device order,
// dropping the oldest group kept.
func (c *Commands) rememberGroup(id string, cmds []*Command) {
	ids := make([]string, len(cmds))
	for i, cmd := range cmds {
		ids[i] = cmd.ID
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.groupOrder[c.groupNext]; old != "" {
		delete(c.groups, old)
	}
	c.groupOrder[c.groupNext] = id
	c.groups[id] = ids
	c.groupNext = (c.groupNext + 1) % len(c.groupOrder)
}

// groupInMemory answers GetGroup from memory when the group is recent and
// every command of it is active or recently ended: under a burst, the
// console following a group does not wait for the database's one
// connection, which the journal writer keeps busy.
func (c *Commands) groupInMemory(scope orgs.Scope, id string) (Group, bool) {
	c.mu.Lock()
	ids, ok := c.groups[id]
	g := Group{ID: id, Results: make([]GroupMember, 0, len(ids))}
	for _, cid := range ids {
		cmd, found := c.inMemory(cid)
		if !found {
			ok = false
			break
		}
		snapshot := *cmd
		g.Results = append(g.Results, GroupMember{DeviceID: snapshot.DeviceID, Command: &snapshot})
	}
	c.mu.Unlock()
	if !ok || len(ids) == 0 {
		return Group{}, false
	}
	g.Results = slices.DeleteFunc(g.Results, func(m GroupMember) bool { return !c.reg.orgs.Contains(scope, m.Command.OrgID) })
	if len(g.Results) == 0 {
		return Group{}, false // the database answers: not found
	}
	g.Name = g.Results[0].Command.Name
	summarize(&g)
	return g, true
}

// DeviceRemoved ends the active commands of a device that was disabled or
// deleted: they fail with the reason.
func (c *Commands) DeviceRemoved(id ID, reason string) {
	c.mu.Lock()
	var ids []string
	for cid, cmd := range c.active {
		if cmd.DeviceID == id {
			ids = append(ids, cid)
		}
	}
	c.mu.Unlock()
	for _, cid := range ids {
		c.transition(cid, CommandFailed, reason, nil, "system")
	}
}

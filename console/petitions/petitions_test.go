package petitions

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
	"github.com/lookout-cc/lookout/internal/orgs/orgstest"
	"github.com/lookout-cc/lookout/internal/sqldb"
)

type env struct {
	ctx   context.Context
	store *Store
	tree  *orgs.Store
	dir   string
}

// fakeSites has bht in qj and xld in ys.
type fakeSites map[string]orgs.ID

func (f fakeSites) SiteOrg(_ context.Context, _ orgs.Scope, id string) (orgs.ID, error) {
	if org, ok := f[id]; ok {
		return org, nil
	}
	return "", errors.New("no such site")
}

// newEnv is the petitions of orgstest's tree over a real SQLite database.
func newEnv(t *testing.T) *env {
	t.Helper()
	db, tree, dir := orgstest.Tree(t)
	seal, err := NewSealer(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return &env{ctx: context.Background(), store: NewStore(db, tree, seal, fakeSites{"bht": "qj", "xld": "ys"}), tree: tree, dir: dir}
}

func (e *env) scope(t *testing.T, id orgs.ID) orgs.Scope {
	t.Helper()
	s, err := e.tree.ScopeOf(id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func good() NewPetition {
	return NewPetition{SiteID: "bht", Subject: "安置房漏水", Description: "新房入住三个月，屋顶漏水，多次报修未处理。",
		Petitioner: Petitioner{Name: "张三丰", Phone: "13812345678", IDNumber: "11010519491231002x"}}
}

// A petition is recorded in its county, read whole by who may and masked
// otherwise, listed masked, and invisible outside the county's tree; the
// database holds the personal data only encrypted.
func TestPetitionRecordedProtectedAndScoped(t *testing.T) {
	e := newEnv(t)
	qj := e.scope(t, "qj")
	p, err := e.store.Create(e.ctx, qj, "officer-li", good())
	if err != nil {
		t.Fatal(err)
	}
	if p.OrgID != "qj" || p.State != StateReceived || p.Petitioner.IDNumber != "11010519491231002X" || len(p.Steps) != 1 {
		t.Fatalf("created: %+v", p)
	}
	whole, err := e.store.Get(e.ctx, e.scope(t, "zt"), p.ID, true)
	if err != nil || whole.Petitioner != (Petitioner{Name: "张三丰", Phone: "13812345678", IDNumber: "11010519491231002X"}) {
		t.Fatalf("whole: %+v %v", whole.Petitioner, err)
	}
	masked, err := e.store.Get(e.ctx, qj, p.ID, false)
	if err != nil || masked.Petitioner != (Petitioner{Name: "张**", Phone: "138****5678", IDNumber: "1101**********002X", Masked: true}) {
		t.Fatalf("masked: %+v %v", masked.Petitioner, err)
	}
	list, err := e.store.List(e.ctx, qj, Filter{})
	if err != nil || len(list) != 1 || !list[0].Petitioner.Masked || list[0].Petitioner.IDNumber != "1101**********002X" {
		t.Fatalf("list: %+v %v", list, err)
	}
	if _, err := e.store.Get(e.ctx, e.scope(t, "ys"), p.ID, true); !errors.Is(err, orgs.ErrOutOfScope) {
		t.Fatalf("another county read it: %v", err)
	}
	if list, _ := e.store.List(e.ctx, e.scope(t, "ys"), Filter{}); len(list) != 0 {
		t.Fatalf("another county lists it: %+v", list)
	}
	// Only masked forms are in the database's files in the clear.
	for _, name := range []string{sqldb.FileName, sqldb.FileName + "-wal"} {
		raw, _ := os.ReadFile(filepath.Join(e.dir, name))
		for _, secret := range []string{"11010519491231002X", "13812345678", "张三丰"} {
			if bytes.Contains(raw, []byte(secret)) {
				t.Errorf("%s holds %q in the clear", name, secret)
			}
		}
	}
}

func TestBadPetitionsAreRefusedByField(t *testing.T) {
	e := newEnv(t)
	qj := e.scope(t, "qj")
	for _, tc := range []struct {
		field string
		edit  func(*NewPetition)
	}{
		{"petitioner.name", func(p *NewPetition) { p.Petitioner.Name = " " }},
		{"petitioner.phone", func(p *NewPetition) { p.Petitioner.Phone = "12345" }},
		{"petitioner.id_number", func(p *NewPetition) { p.Petitioner.IDNumber = "110105194912310021" }},
		{"subject", func(p *NewPetition) { p.Subject = "" }},
		{"subject", func(p *NewPetition) { p.Subject = strings.Repeat("漏", 201) }},
		{"description", func(p *NewPetition) { p.Description = "" }},
		{"site_id", func(p *NewPetition) { p.SiteID = "xld" }}, // another county's site
		{"site_id", func(p *NewPetition) { p.SiteID = "nope" }},
		{"site_id", func(p *NewPetition) { p.OrgID, p.SiteID = "qj", "xld" }}, // a site the handler does not oversee
	} {
		in := good()
		tc.edit(&in)
		_, err := e.store.Create(e.ctx, qj, "officer-li", in)
		var ce *errclass.Error
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%s: %v", tc.field, err)
		}
	}
	in := good()
	in.OrgID = "ys" // another county
	if _, err := e.store.Create(e.ctx, qj, "officer-li", in); errclass.KindOf(err) != errclass.OutOfScope {
		t.Errorf("a petition for another county: %v", err)
	}
	if list, _ := e.store.List(e.ctx, qj, Filter{}); len(list) != 0 {
		t.Fatalf("a refused petition was kept: %+v", list)
	}
}

// Steps follow the states; a step the state does not allow changes
// nothing; each step is kept with who and the note.
func TestPetitionSteps(t *testing.T) {
	e := newEnv(t)
	qj := e.scope(t, "qj")
	p, err := e.store.Create(e.ctx, qj, "officer-li", good())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		step string
		ok   bool
	}{
		{StateHeard, false}, // not scheduled yet
		{StateScheduled, true},
		{StateResolved, false},
		{StateHeard, true},
		{StateScheduled, true}, // a follow-up hearing
		{StateHeard, true},
		{StateResolved, true},
		{StateWithdrawn, false},
		{StateClosed, true},
		{StateScheduled, false},
		{"received", false}, // not a step
	} {
		_, err := e.store.Step(e.ctx, qj, "officer-li", p.ID, tc.step, "第 "+tc.step)
		if (err == nil) != tc.ok {
			t.Fatalf("%s: %v, want ok %v", tc.step, err, tc.ok)
		}
	}
	got, err := e.store.Get(e.ctx, qj, p.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, s := range got.Steps {
		steps = append(steps, s.Step)
	}
	if got.State != StateClosed || strings.Join(steps, " ") != "received scheduled heard scheduled heard resolved closed" || got.Steps[1].Note != "第 scheduled" {
		t.Fatalf("state %s, steps %v", got.State, steps)
	}
	if _, err := e.store.Step(e.ctx, e.scope(t, "ys"), "x", p.ID, StateWithdrawn, ""); !errors.Is(err, orgs.ErrOutOfScope) {
		t.Fatalf("another county stepped it: %v", err)
	}
}

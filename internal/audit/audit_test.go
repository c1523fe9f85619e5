package audit

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/internal/orgs"
	"github.com/lookout-cc/lookout/internal/sqldb"
)

func TestChainAppendsVerifiesAndCatchesTampering(t *testing.T) {
	ctx := context.Background()
	db, err := sqldb.Open(ctx, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tree, _ := orgs.NewStore(ctx, db)
	tree.EnsureRoot(ctx, orgs.NewOrg{ID: "cn", Name: "全国", Kind: "national"})
	root, _ := tree.ScopeOf("cn")
	tree.Create(ctx, root, orgs.NewOrg{ID: "qj", ParentID: "cn", Name: "巧家县", Kind: "county"})
	tree.Create(ctx, root, orgs.NewOrg{ID: "ys", ParentID: "cn", Name: "永善县", Kind: "county"})

	l, err := Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	for i, org := range []orgs.ID{"qj", "ys", "qj"} {
		if err := l.Record(ctx, "admin", org, "device.create", "g"+string(rune('0'+i)), ResultOK, map[string]any{"kind": "water_level"}); err != nil {
			t.Fatal(err)
		}
	}
	// A restart continues the same chain.
	l, _ = Open(ctx, db)
	if err := l.Record(ctx, "admin", "qj", "device.credentials.rotate", "g0", ResultOK, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := Verify(ctx, db); err != nil || n != 4 {
		t.Fatalf("verify: %d %v", n, err)
	}
	qj, _ := tree.ScopeOf("qj")
	es, err := l.List(ctx, qj, Filter{Action: "device."})
	if err != nil || len(es) != 3 || es[0].Action != "device.credentials.rotate" || es[2].Detail["kind"] != "water_level" {
		t.Fatalf("county list: %+v %v", es, err)
	}
	if es, _ := l.List(ctx, qj, Filter{Action: "device.create", Target: "g1"}); len(es) != 0 {
		t.Fatal("another county's entry listed")
	}

	// The table refuses changes...
	if _, err := db.Exec(`UPDATE audit_log SET result = 'failed' WHERE seq = 2`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("update allowed: %v", err)
	}
	if _, err := db.Exec(`DELETE FROM audit_log WHERE seq = 2`); err == nil {
		t.Fatal("delete allowed")
	}
	// ...and whoever gets round that is caught by the chain.
	db.Exec(`DROP TRIGGER audit_log_no_update`)
	db.Exec(`UPDATE audit_log SET result = 'failed' WHERE seq = 2`)
	if _, err := Verify(ctx, db); err == nil || !strings.Contains(err.Error(), "entry 2 was changed") {
		t.Fatalf("changed entry: %v", err)
	}
	db.Exec(`DROP TRIGGER audit_log_no_delete`)
	db.Exec(`DELETE FROM audit_log WHERE seq = 2`)
	if _, err := Verify(ctx, db); err == nil || !strings.Contains(err.Error(), "entry 2 is missing") {
		t.Fatalf("removed entry: %v", err)
	}
}

func TestInTxCommitsStepsAndEntriesTogether(t *testing.T) {
	ctx := context.Background()
	db, err := sqldb.Open(ctx, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tree, _ := orgs.NewStore(ctx, db)
	tree.EnsureRoot(ctx, orgs.NewOrg{ID: "cn", Name: "全国", Kind: "national"})
	l, _ := Open(ctx, db)
	if _, err := db.Exec(`CREATE TABLE steps(n INTEGER)`); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(ctx, "admin", "cn", "org.create", "cn", ResultOK, nil); err != nil {
		t.Fatal(err)
	}
	// A batch that fails leaves neither its steps nor its entries, and the
	// chain goes on from where it was.
	failed := l.InTx(ctx, func(tx *sql.Tx, add func(Rec)) error {
		if _, err := tx.Exec(`INSERT INTO steps(n) VALUES (1)`); err != nil {
			return err
		}
		add(Rec{Actor: "system", OrgID: "cn", Action: "command.sent", Target: "lamp", Result: "sent"})
		return errors.New("boom")
	})
	if failed == nil {
		t.Fatal("the batch's error was lost")
	}
	// 3, then 157: the entries go in many rows a statement (64, 16, 4 and
	// 1), in the chain's order.
	for _, n := range []int{3, 157} {
		err = l.InTx(ctx, func(tx *sql.Tx, add func(Rec)) error {
			for i := range n {
				if _, err := tx.Exec(`INSERT INTO steps(n) VALUES (?)`, i); err != nil {
					return err
				}
				add(Rec{Actor: "system", OrgID: "cn", Action: "command.acked", Target: "lamp", Result: "acked", Detail: map[string]any{"i": i}})
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Record(ctx, "admin", "cn", "site.create", "s", ResultOK, nil); err != nil {
		t.Fatal(err)
	}
	var steps int
	db.QueryRow(`SELECT count(*) FROM steps`).Scan(&steps)
	var lastDetail string
	db.QueryRow(`SELECT detail FROM audit_log WHERE seq = 161`).Scan(&lastDetail)
	if n, err := Verify(ctx, db); err != nil || n != 162 || steps != 160 || lastDetail != `{"i":156}` {
		t.Fatalf("verify: %d entries, %d steps, the last batch's last %s, %v", n, steps, lastDetail, err)
	}
}

// The hash of an entry is part of the stored chain: entries written by
// earlier versions must still verify. The reference is the format as
// first written (each field as "len:value;" through fmt).
func TestHashFormatIsStable(t *testing.T) {
	reference := func(e Entry, detail string) string {
		h := sha256.New()
		for _, f := range []string{fmt.Sprint(e.Seq), fmt.Sprint(e.TS.UnixMilli()), e.Actor, string(e.OrgID), e.Action, e.Target, e.Result, detail, e.PrevHash} {
			fmt.Fprintf(h, "%d:%s;", len(f), f)
		}
		return hex.EncodeToString(h.Sum(nil))
	}
	for _, tc := range []struct {
		name   string
		e      Entry
		detail string
	}{
		{"first entry", Entry{Seq: 1, TS: time.UnixMilli(1_700_000_000_123), Actor: "admin", OrgID: "cn", Action: "user.create", Target: "u1", Result: "ok"}, "{}"},
		{"Chinese and a long detail", Entry{Seq: 123456789, TS: time.UnixMilli(1_800_000_000_000), Actor: "device:lamp-1", OrgID: "qj", Action: "command.acked",
			Target: "巧家县路灯", Result: "acked", PrevHash: strings.Repeat("ab", 32)}, `{"note":"` + strings.Repeat("水位", 300) + `"}`},
		{"empty fields", Entry{}, ""},
	} {
		if got, want := hashOf(tc.e, tc.detail), reference(tc.e, tc.detail); got != want {
			t.Errorf("%s: hash %s, want %s", tc.name, got, want)
		}
	}
}

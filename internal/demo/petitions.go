package demo

import (
	"context"
	"time"

	"github.com/lookout-cc/lookout/console/hearings"
	"github.com/lookout-cc/lookout/console/petitions"
	"github.com/lookout-cc/lookout/internal/orgs"
)

// demoPetitions are the demo's petitions of residents resettled for the
// Baihetan reservoir, in Qiaojia county (the ID numbers are made up, with
// valid check characters).
var demoPetitions = []petitions.NewPetition{
	{OrgID: "qj", SiteID: "qj-resettle", Subject: "安置房屋顶漏水", Description: "入住白鹤滩移民安置小区 3 栋以来，雨季屋顶持续漏水，多次报修未处理。",
		Petitioner: petitions.Petitioner{Name: "张德芬", Phone: "13887001234", IDNumber: "11010519491231002X"}},
	{OrgID: "qj", SiteID: "qj-resettle", Subject: "第二期搬迁补偿款未到账", Description: "搬迁补偿协议约定的第二期补偿款逾期两个月未发放。",
		Petitioner: petitions.Petitioner{Name: "李国华", Phone: "13908711234", IDNumber: "530622198503150010"}},
	{OrgID: "qj", Subject: "子女就近入学", Description: "安置后子女转学至小区附近学校的手续办理缓慢。",
		Petitioner: petitions.Petitioner{Name: "王秀英", Phone: "15912341234", IDNumber: "530622199001011234"}},
}

// SeedPetitions records the demo's petitions once (when the county has
// none) and schedules a hearing of the first at 15:00 today, China time:
// a hearing officer opening the console has a day's work to see. The
// resident's link is issued from the console (it is answered once, never
// logged).
func SeedPetitions(ctx context.Context, pets *petitions.Store, hs *hearings.Service, tree *orgs.Store, actor string) (bool, error) {
	scope, err := tree.ScopeOf("qj")
	if err != nil {
		return false, nil // a tree without the demo's county
	}
	existing, err := pets.List(ctx, scope, petitions.Filter{Limit: 1})
	if err != nil || len(existing) > 0 {
		return false, err
	}
	var first petitions.Petition
	for i, in := range demoPetitions {
		p, err := pets.Create(ctx, scope, actor, in)
		if err != nil {
			return false, err
		}
		if i == 0 {
			first = p
		}
	}
	cst := time.FixedZone("CST", 8*3600)
	y, m, d := time.Now().In(cst).Date()
	starts := time.Date(y, m, d, 15, 0, 0, 0, cst)
	if starts.Before(time.Now().Add(-time.Hour)) {
		starts = starts.AddDate(0, 0, 1)
	}
	_, err = hs.Schedule(ctx, scope, actor, first.ID, hearings.NewHearing{StartsAt: starts,
		Others: []hearings.Other{{Name: "巧家县住建局", Role: "部门代表"}}})
	return true, err
}

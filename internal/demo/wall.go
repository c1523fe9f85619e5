package demo

import (
	"context"
	"errors"
	"fmt"

	"github.com/lookout-cc/lookout/console/walls"
	"github.com/lookout-cc/lookout/internal/orgs"
)

// WallID is the demo's video wall.
const WallID = "main"

// SeedWall creates the demo's video wall, 指挥大屏 (WallID), in the scope's
// root organisation unless it exists, which is then left as it is: layout
// 1+5, the demo cameras on the five small tiles, and the large tile 0 as
// the alert area, where the server puts an alert's camera by itself. It
// reports whether it created the wall.
func SeedWall(ctx context.Context, store *walls.Store, scope orgs.Scope, cams []CameraSpec) (bool, error) {
	_, err := store.Create(ctx, scope, walls.Actor, walls.NewWall{ID: WallID, Name: "指挥大屏", Layout: "1+5", AlertArea: []int{0}})
	if errors.Is(err, walls.ErrWallExists) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("demo wall: %w", err)
	}
	for i, c := range cams {
		if i+1 >= walls.TileCount("1+5") {
			break
		}
		if _, err := store.SetTile(ctx, scope, walls.Actor, WallID, i+1, walls.TileInput{Source: &walls.Source{Kind: walls.SourceCamera, ID: c.ID}}); err != nil {
			return true, fmt.Errorf("demo wall, camera %s: %w", c.ID, err)
		}
	}
	return true, nil
}

// Package demo loads the demo data shipped in configs/demo into a new
// installation, plays its devices over MQTT and its cameras over RTSP (each
// a looping clip of clips/), so that `make run` shows a living command
// centre. Seeding is idempotent: what exists already is left as it is, but
// for a demo camera's URL, which follows the demo RTSP server.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"go.yaml.in/yaml/v3"

	"github.com/lookout-cc/lookout/configs"
	"github.com/lookout-cc/lookout/internal/orgs"
)

type orgFile struct {
	Orgs []struct {
		ID     string `yaml:"id"`
		Parent string `yaml:"parent"`
		Name   string `yaml:"name"`
		Kind   string `yaml:"kind"`
	} `yaml:"orgs"`
}

// SeedOrgs creates the demo organisation tree under root. It returns how many
// organisations it created.
func SeedOrgs(ctx context.Context, tree *orgs.Store, root orgs.ID, log *slog.Logger) (int, error) {
	data, err := fs.ReadFile(configs.Files, "demo/orgs.yaml")
	if err != nil {
		return 0, err
	}
	var f orgFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		return 0, fmt.Errorf("demo/orgs.yaml: %w", err)
	}
	scope, err := tree.ScopeOf(root)
	if err != nil {
		return 0, err
	}
	created := 0
	for _, o := range f.Orgs {
		parent := orgs.ID(o.Parent)
		if parent == "" {
			parent = root // the file's top organisations go under whatever the root is
		}
		_, err := tree.Create(ctx, scope, orgs.NewOrg{ID: orgs.ID(o.ID), ParentID: parent, Name: o.Name, Kind: o.Kind})
		switch {
		case errors.Is(err, orgs.ErrExists):
		case err != nil:
			return created, fmt.Errorf("demo org %s: %w", o.ID, err)
		default:
			created++
		}
	}
	if created > 0 {
		log.Info("demo organisations created", "count", created, "root", root)
	}
	return created, nil
}

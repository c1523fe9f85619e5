// Package configs ships Lookout's configuration files inside the binary: the
// embedded default (lookout.yaml), the production example (production.yaml)
// and the demo data under demo/.
package configs

import "embed"

// Files holds every YAML file of this folder, for the demo seed and for
// `lookout serve` without --config.
//
//go:embed *.yaml demo/*.yaml
var Files embed.FS

// DefaultFile is the name of the embedded default configuration.
const DefaultFile = "lookout.yaml"

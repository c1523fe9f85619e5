package walls

import "github.com/lookout-cc/lookout/internal/errclass"

// Errors of the wall store. Bad input is an errclass Invalid error
// (invalid_field) naming the field.
var (
	// ErrWallNotFound: no wall has this id.
	ErrWallNotFound = errclass.New(errclass.NotFound, "wall_not_found", "wall not found")
	// ErrWallExists: a wall with this id exists.
	ErrWallExists = errclass.New(errclass.Conflict, "wall_exists", "a wall with this id exists")
	// ErrVersionConflict: the change names a version the wall has moved
	// past; reload the wall and make the change again.
	ErrVersionConflict = errclass.New(errclass.Conflict, "wall_version_conflict", "the wall was changed meanwhile; reload it and try again")
)

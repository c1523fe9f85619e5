package record

import "errors"

// ErrUnsupportedCodec: Params.MimeType is none of VP8, H.264 and Opus.
var ErrUnsupportedCodec = errors.New("record: unsupported codec")

// ErrExists: the recording's file (or its .part) is there already; a
// recording is evidence and is never overwritten.
var ErrExists = errors.New("record: file exists")

// ErrNoMedia: Close found nothing to keep (no packet came, or no video
// keyframe); no file is left behind.
var ErrNoMedia = errors.New("record: no media was recorded")

module github.com/lookout-cc/lookout/scripts/trace-wakeups

go 1.26.8

require golang.org/x/exp v0.0.0-20260718201538-764159d718ef

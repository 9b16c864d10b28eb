package policy

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Debounce: an editor save or a ConfigMap update is a burst of events, and
// compiling once per burst is enough. reloadQuiet is how long the burst must
// be quiet; reloadMaxDelay caps the wait under a steady stream of events so
// a change still lands.
const (
	reloadQuiet    = 100 * time.Millisecond
	reloadMaxDelay = time.Second
)

func (e *Engine) watch(ctx context.Context, dir string) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	if err := addTree(w, dir); err != nil {
		w.Close()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	e.stopWatch = cancel
	e.watchDone = make(chan struct{})
	go func() {
		defer close(e.watchDone)
		defer w.Close()
		e.watchLoop(ctx, w)
	}()
	return nil
}

// addTree watches dir and its visible subdirectories, because fsnotify
// watches are not recursive and data.json may live in a subdirectory.
func addTree(w *fsnotify.Watcher, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			return fs.SkipDir
		}
		return w.Add(p)
	})
}

func (e *Engine) watchLoop(ctx context.Context, w *fsnotify.Watcher) {
	// Stopped at once: with Go 1.23+ timers a stopped timer never delivers
	// a stale tick, so it can be armed later with Reset alone.
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var pending bool
	var first time.Time

	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return

		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			if ev.Op.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() && !strings.HasPrefix(fi.Name(), ".") {
					if err := addTree(w, ev.Name); err != nil {
						e.log.Warn("cannot watch new policy subdirectory", "dir", ev.Name, "error", err)
					}
				}
			}
			now := time.Now()
			if !pending {
				pending, first = true, now
			}
			wait := min(reloadQuiet, first.Add(reloadMaxDelay).Sub(now))
			timer.Reset(max(wait, 0))

		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			e.log.Warn("policy directory watch error", "error", err)

		case <-timer.C:
			pending = false
			// The error is already logged, counted and kept by Reload.
			_ = e.Reload(ctx)
		}
	}
}

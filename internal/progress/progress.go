// Package progress draws live progress in a terminal (mpb): one line per node, or byte bars for
// downloads and copies; elsewhere it prints plain lines or nothing.
package progress

import (
	"io"
	"os"
	"strings"
	"sync"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// Terminal tells whether w is a terminal.
func Terminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// NodeLines shows one live line per node in a terminal, or plain lines elsewhere.
type NodeLines struct {
	plain func(node, msg string)
	p     *mpb.Progress
	mu    sync.Mutex
	bars  map[string]*mpb.Bar
	msgs  map[string]string
}

// NewNodeLines draws nodes' lines on w when it is a terminal (and live is true); otherwise each
// step goes to plain.
func NewNodeLines(w io.Writer, nodes []string, live bool, plain func(node, msg string)) *NodeLines {
	l := &NodeLines{plain: plain}
	if !live || !Terminal(w) {
		return l
	}
	l.p = mpb.New(mpb.WithOutput(w), mpb.WithWidth(12))
	l.bars, l.msgs = map[string]*mpb.Bar{}, map[string]string{}
	width := 0
	for _, n := range nodes {
		width = max(width, len(n))
	}
	for _, n := range nodes {
		l.msgs[n] = "waiting"
		l.bars[n] = l.p.New(0, mpb.SpinnerStyle(),
			mpb.PrependDecorators(decor.Name(n, decor.WC{W: width + 1, C: decor.DindentRight})),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
				l.mu.Lock()
				defer l.mu.Unlock()
				return l.msgs[n]
			})),
			mpb.BarFillerOnComplete("done"))
	}
	return l
}

// Say reports a step of a node; a final step completes its line.
func (l *NodeLines) Say(node, msg string) {
	if l.p == nil {
		l.plain(node, msg)
		return
	}
	l.mu.Lock()
	l.msgs[node] = msg
	bar := l.bars[node]
	l.mu.Unlock()
	if bar == nil {
		return
	}
	for _, final := range []string{"pulled", "loaded", "failed", "already"} {
		if strings.HasPrefix(msg, final) {
			bar.SetTotal(-1, true)
			return
		}
	}
}

// Wait ends the live display.
func (l *NodeLines) Wait() {
	if l.p == nil {
		return
	}
	for _, b := range l.bars {
		if !b.Completed() {
			b.SetTotal(-1, true)
		}
	}
	l.p.Wait()
}

// ByteBar returns a progress wrapper that draws one bar per stream of at least min bytes in a
// terminal, and a function that waits for the bars to finish (nil and a no-op elsewhere).
func ByteBar(w io.Writer, min int64) (func(name string, size int64, r io.Reader) io.Reader, func()) {
	if !Terminal(w) {
		return nil, func() {}
	}
	p := mpb.New(mpb.WithOutput(w), mpb.WithWidth(40))
	return func(name string, size int64, r io.Reader) io.Reader {
		if size < min {
			return r
		}
		bar := p.AddBar(size, mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR)),
			mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f"), decor.Percentage(decor.WCSyncSpace)))
		pr, err := bar.ProxyReader(r)
		if err != nil {
			return r
		}
		return &doneReader{Reader: pr, done: func() { bar.SetTotal(-1, true) }}
	}, p.Wait
}

// doneReader completes its bar at EOF.
type doneReader struct {
	io.Reader
	done func()
	once sync.Once
}

func (d *doneReader) Read(p []byte) (int, error) {
	n, err := d.Reader.Read(p)
	if err == io.EOF {
		d.once.Do(d.done)
	}
	return n, err
}

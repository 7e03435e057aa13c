package main

import (
	"io"
	"os"
	"strings"
	"sync"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// nodeLines shows one live line per node in a terminal (mpb), or plain lines elsewhere.
type nodeLines struct {
	plain func(node, msg string)
	p     *mpb.Progress
	mu    sync.Mutex
	bars  map[string]*mpb.Bar
	msgs  map[string]string
}

func newNodeLines(w io.Writer, nodes []string, plain func(node, msg string)) *nodeLines {
	l := &nodeLines{plain: plain}
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
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

// say reports a step of a node; a final step completes its line.
func (l *nodeLines) say(node, msg string) {
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

// wait ends the live display.
func (l *nodeLines) wait() {
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

// byteBar returns a progress wrapper that draws a bar in a terminal (nil elsewhere).
func byteBar(w io.Writer) func(name string, size int64, r io.Reader) io.Reader {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return func(name string, size int64, r io.Reader) io.Reader {
		p := mpb.New(mpb.WithOutput(w), mpb.WithWidth(40))
		bar := p.AddBar(size, mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR)),
			mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f"), decor.Percentage(decor.WCSyncSpace)))
		pr, err := bar.ProxyReader(r)
		if err != nil {
			return r
		}
		return &waitReader{Reader: pr, done: func() { bar.SetTotal(-1, true); p.Wait() }}
	}
}

// waitReader ends its progress display at EOF.
type waitReader struct {
	io.Reader
	done func()
	once sync.Once
}

func (w *waitReader) Read(p []byte) (int, error) {
	n, err := w.Reader.Read(p)
	if err == io.EOF {
		w.once.Do(w.done)
	}
	return n, err
}

package opscore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// obj is an ordered object like clu.Object.
type benchObj []any

func (o benchObj) Values() []any { return o }

// Keywords as the relay writes them for one camera line.
var (
	benchStatus = []Keyword{KW("status", "gfa1", benchObj{
		"gfa1n", "MicroLine ML4240", "ML0112718", json.Number("0"), json.Number("0"), json.Number("1"), json.Number("1"),
		[]any{json.Number("0"), json.Number("0"), json.Number("2048"), json.Number("2048")},
		[]any{json.Number("0"), json.Number("0"), json.Number("2048"), json.Number("2048")},
		json.Number("-10.02"), json.Number("21.3"), json.Number("0.0"), json.Number("47.5"),
	})}
	benchText  = []Keyword{KW("text", "gfa1", "flood 123456")}
	benchMixed = []Keyword{KW("yourUserID", 3), KW("num_users", 2), KW("temp", 1.25, -3.5e-9, true, nil, Quoted("1.2.3"))}
)

func BenchmarkAppendReply(b *testing.B) {
	for _, bc := range []struct {
		name string
		kws  []Keyword
	}{{"status", benchStatus}, {"text", benchText}, {"mixed", benchMixed}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				buf = AppendReply(buf[:0], 1, 12, Info, bc.kws...)
			}
		})
	}
}

func BenchmarkFormatReply(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = FormatReply(1, 12, Info, benchStatus...)
	}
}

func BenchmarkParseReplyOpscore(b *testing.B) {
	line := FormatReply(1, 12, Info, benchStatus...)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseReply(line); err != nil {
			b.Fatal(err)
		}
	}
}

// floodHandler answers "flood N" with N info lines (a relayed camera text
// line each) and a final `:`.
type floodHandler struct{ srv *Server }

func (h *floodHandler) Handle(ctx context.Context, cmd *Command) {
	n, _ := strconv.Atoi(cmd.Args[0])
	for i := 0; i < n && ctx.Err() == nil; i++ {
		if cmd.Verb == "bflood" {
			h.srv.Broadcast(Info, benchText...)
		} else {
			cmd.Write(Info, benchText...)
		}
	}
	cmd.Finish()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkServerWrite measures the server's per-line write path: a
// command writes b.N replies to its user (reply), or broadcasts b.N lines
// to four users (broadcast4), on loopback, read as fast as the clients
// can. cpu-ns/line is the whole process's CPU (server and the reading
// clients) per line.
func BenchmarkServerWrite(b *testing.B) {
	for _, bc := range []struct {
		name  string
		users int
		verb  string
	}{{"reply", 1, "flood"}, {"broadcast4", 4, "bflood"}} {
		users := bc.users
		b.Run(bc.name, func(b *testing.B) {
			h := &floodHandler{}
			s := NewServer("127.0.0.1:0", h, benchServerOpts()...)
			h.srv = s
			if err := s.Listen(); err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Serve(ctx) }()
			defer func() { cancel(); <-done }()

			// Extra users only receive the broadcasts.
			for range users - 1 {
				nc, err := net.Dial("tcp", s.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				defer nc.Close()
				go io.Copy(io.Discard, nc)
			}
			nc, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			br := bufio.NewReaderSize(nc, 256<<10)
			for { // skip the greeting
				l, err := br.ReadString('\n')
				if err != nil {
					b.Fatal(err)
				}
				if bytes.Contains([]byte(l), []byte("version=")) {
					break
				}
			}
			var uid string
			{
				addr := nc.LocalAddr().String()
				for _, u := range s.Users() {
					if u.Addr == addr {
						uid = strconv.Itoa(u.ID)
					}
				}
			}
			end := []byte("\n" + uid + " 1 : ")
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			start := time.Now()
			if _, err := nc.Write([]byte("1 " + bc.verb + " " + strconv.Itoa(b.N) + "\n")); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 256<<10)
			var tail []byte
			for {
				n, err := br.Read(buf)
				if err != nil {
					b.Fatal(err)
				}
				chunk := append(tail, buf[:n]...)
				if bytes.Contains(chunk, end) {
					break
				}
				if len(chunk) > len(end) {
					tail = append(tail[:0], chunk[len(chunk)-len(end):]...)
				} else {
					tail = chunk
				}
			}
			el := time.Since(start)
			b.StopTimer()
			cpu := cpuTime() - cpu0
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/line")
			b.ReportMetric(float64(b.N)/el.Seconds(), "lines/s")
		})
	}
}

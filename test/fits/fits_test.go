package fits

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		w, h int
	}{
		{"one pixel", 1, 1},
		{"exactly one data block", 40, 36}, // 1440 pixels = 2880 bytes
		{"partial last block", 7, 5},
		{"wide", 2048, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im := &Image{Width: tc.w, Height: tc.h, Pixels: make([]uint16, tc.w*tc.h)}
			for i := range im.Pixels {
				im.Pixels[i] = uint16(i * 7919)
			}
			im.Pixels[0], im.Pixels[len(im.Pixels)-1] = 0, 65535
			im.Cards = []Card{
				{Key: "CAMNAME", Value: "gfa1n", Comment: "Camera name"},
				{Key: "EXPTIME", Value: 1.5, Comment: "Exposure time"},
				{Key: "IMAGETYP", Value: "object"},
				{Key: "DATE-OBS", Value: FormatDate(time.Date(2025, 3, 4, 5, 6, 7, 891e6, time.UTC))},
				{Key: "OBSERVAT", Value: "APO"},
				{Key: "QUOTE", Value: "it's"},
				{Key: "EMPTY", Value: ""},
				{Key: "LONGSTR", Value: strings.Repeat("x", MaxStringLen)},
				{Key: "SEQNUM", Value: int64(-42)},
				{Key: "FLAG", Value: false},
				{Key: "BIG", Value: 1e20},
				{Key: "SMALL", Value: -2.5e-300},
				{Key: "WHOLE", Value: 3.0},
				{Key: "F32", Value: float32(0.25)},
				{Key: "U16", Value: uint16(65535)},
				{Key: "COMMENT", Comment: "a commentary card, = with / signs"},
				{Key: "HISTORY", Comment: "  leading spaces kept"},
			}
			var buf bytes.Buffer
			if err := Encode(&buf, im); err != nil {
				t.Fatal(err)
			}
			b := buf.Bytes()
			if len(b)%BlockSize != 0 {
				t.Fatalf("file is %d bytes, not a whole number of %d-byte blocks", len(b), BlockSize)
			}
			headerLen := endOffset(t, b) + CardSize
			headerLen += (BlockSize - headerLen%BlockSize) % BlockSize
			dataLen := 2 * tc.w * tc.h
			wantLen := headerLen + dataLen + (BlockSize-dataLen%BlockSize)%BlockSize
			if len(b) != wantLen {
				t.Errorf("file is %d bytes, want %d", len(b), wantLen)
			}
			// Pixels are big-endian v-32768.
			if got, want := int16(binary.BigEndian.Uint16(b[headerLen:])), int(im.Pixels[0])-32768; int(got) != want {
				t.Errorf("first stored pixel = %d, want %d", got, want)
			}

			got, err := Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			want := &Image{Width: tc.w, Height: tc.h, Pixels: im.Pixels, Cards: []Card{
				{Key: "CAMNAME", Value: "gfa1n", Comment: "Camera name"},
				{Key: "EXPTIME", Value: 1.5, Comment: "Exposure time"},
				{Key: "IMAGETYP", Value: "object"},
				{Key: "DATE-OBS", Value: "2025-03-04T05:06:07.891"},
				{Key: "OBSERVAT", Value: "APO"},
				{Key: "QUOTE", Value: "it's"},
				{Key: "EMPTY", Value: ""},
				{Key: "LONGSTR", Value: strings.Repeat("x", MaxStringLen)},
				{Key: "SEQNUM", Value: int64(-42)},
				{Key: "FLAG", Value: false},
				{Key: "BIG", Value: 1e20},
				{Key: "SMALL", Value: -2.5e-300},
				{Key: "WHOLE", Value: 3.0},
				{Key: "F32", Value: 0.25},
				{Key: "U16", Value: int64(65535)},
				{Key: "COMMENT", Comment: "a commentary card, = with / signs"},
				{Key: "HISTORY", Comment: "  leading spaces kept"},
			}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("decoded image differs (-want +got):\n%s", diff)
			}
		})
	}
}

// endOffset returns the offset of the END card, checking on the way that
// every card is 80 printable characters and the mandatory ones come first.
func endOffset(t *testing.T, b []byte) int {
	t.Helper()
	for off := 0; off+CardSize <= len(b); off += CardSize {
		card := string(b[off : off+CardSize])
		for _, r := range card {
			if r < 32 || r > 126 {
				t.Fatalf("card at %d has a non-printable byte: %q", off, card)
			}
		}
		if card == "END"+strings.Repeat(" ", 77) {
			return off
		}
	}
	t.Fatal("no END card")
	return 0
}

func TestHeaderBytes(t *testing.T) {
	var buf bytes.Buffer
	im := &Image{Width: 3, Height: 2, Pixels: []uint16{0, 1, 2, 32768, 65534, 65535}, Cards: []Card{
		{Key: "CAMNAME", Value: "gfa1n", Comment: "Camera name"},
		{Key: "EXPTIME", Value: 5.0},
		{Key: "NAME", Value: "it's"},
	}}
	if err := Encode(&buf, im); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	wantCards := []string{
		"SIMPLE  =                    T / conforms to FITS standard",
		"BITPIX  =                   16 / array data type",
		"NAXIS   =                    2 / number of array dimensions",
		"NAXIS1  =                    3",
		"NAXIS2  =                    2",
		"EXTEND  =                    T",
		"BZERO   =                32768 / offset data range to that of unsigned short",
		"BSCALE  =                    1 / default scaling factor",
		"CAMNAME = 'gfa1n   '           / Camera name",
		"EXPTIME =                  5.0",
		"NAME    = 'it''s   '",
		"END",
	}
	for i, want := range wantCards {
		got := string(b[i*CardSize : (i+1)*CardSize])
		if got != want+strings.Repeat(" ", CardSize-len(want)) {
			t.Errorf("card %d = %q, want %q", i+1, strings.TrimRight(got, " "), want)
		}
	}
	if rest := b[len(wantCards)*CardSize : BlockSize]; len(bytes.Trim(rest, " ")) != 0 {
		t.Error("header padding is not all spaces")
	}
	if len(b) != 2*BlockSize {
		t.Fatalf("file is %d bytes, want %d", len(b), 2*BlockSize)
	}
	data := b[BlockSize:]
	wantData := []byte{0x80, 0x00, 0x80, 0x01, 0x80, 0x02, 0x00, 0x00, 0x7f, 0xfe, 0x7f, 0xff}
	if !bytes.Equal(data[:12], wantData) {
		t.Errorf("data = % x, want % x", data[:12], wantData)
	}
	if len(bytes.Trim(data[12:], "\x00")) != 0 {
		t.Error("data padding is not all zeros")
	}
}

func TestEncodeRejects(t *testing.T) {
	px := []uint16{1}
	for _, tc := range []struct {
		name string
		im   *Image
	}{
		{"zero size", &Image{Width: 0, Height: 1}},
		{"pixel count", &Image{Width: 2, Height: 1, Pixels: px}},
		{"lower-case key", &Image{Width: 1, Height: 1, Pixels: px, Cards: []Card{{Key: "camname", Value: "x"}}}},
		{"long key", &Image{Width: 1, Height: 1, Pixels: px, Cards: []Card{{Key: "CAMERANAME", Value: "x"}}}},
		{"structural key", &Image{Width: 1, Height: 1, Pixels: px, Cards: []Card{{Key: "NAXIS1", Value: 3}}}},
		{"non-ASCII string", &Image{Width: 1, Height: 1, Pixels: px, Cards: []Card{{Key: "A", Value: "é"}}}},
		{"control character", &Image{Width: 1, Height: 1, Pixels: px, Cards: []Card{{Key: "A", Value: "a\nb"}}}},
		{"long string", &Image{Width: 1, Height: 1, Pixels: px, Cards: []Card{{Key: "A", Value: strings.Repeat("'", 35)}}}},
		{"NaN", &Image{Width: 1, Height: 1, Pixels: px, Cards: []Card{{Key: "A", Value: math.NaN()}}}},
		{"Inf", &Image{Width: 1, Height: 1, Pixels: px, Cards: []Card{{Key: "A", Value: math.Inf(1)}}}},
		{"type", &Image{Width: 1, Height: 1, Pixels: px, Cards: []Card{{Key: "A", Value: []int{1}}}}},
		{"long commentary", &Image{Width: 1, Height: 1, Pixels: px, Cards: []Card{{Key: "COMMENT", Comment: strings.Repeat("c", 73)}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Encode(&buf, tc.im); err == nil {
				t.Error("Encode succeeded, want an error")
			}
		})
	}
}

func TestLongCommentIsCut(t *testing.T) {
	im := &Image{Width: 1, Height: 1, Pixels: []uint16{7}, Cards: []Card{
		{Key: "A", Value: "v", Comment: strings.Repeat("c", 100)},
	}}
	var buf bytes.Buffer
	if err := Encode(&buf, im); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := got.Card("A")
	if c.Value != "v" || !strings.HasPrefix(strings.Repeat("c", 100), c.Comment) || len(c.Comment) == 0 {
		t.Errorf("card = %+v, want value v and a cut comment", c)
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n < len(p) {
		return 0, errors.New("disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

func TestEncodeWriteError(t *testing.T) {
	im := &Image{Width: 100, Height: 100, Pixels: make([]uint16, 100*100)}
	if err := Encode(&failWriter{n: 2 * BlockSize}, im); err == nil {
		t.Error("Encode succeeded on a failing writer")
	}
}

func validFile(t testing.TB) []byte {
	var buf bytes.Buffer
	im := &Image{Width: 5, Height: 3, Pixels: make([]uint16, 15), Cards: []Card{{Key: "A", Value: 1}}}
	if err := Encode(&buf, im); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeRejects(t *testing.T) {
	good := validFile(t)
	setCard := func(i int, s string) []byte {
		b := bytes.Clone(good)
		copy(b[i*CardSize:(i+1)*CardSize], s+strings.Repeat(" ", CardSize-len(s)))
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"truncated header", good[:100]},
		{"truncated data", good[:BlockSize+10]},
		{"missing data padding", good[:len(good)-1]},
		{"not SIMPLE first", setCard(0, "BITPIX  =                   16")},
		{"SIMPLE false", setCard(0, "SIMPLE  =                    F")},
		{"BITPIX 8", setCard(1, "BITPIX  =                    8")},
		{"NAXIS 3", setCard(2, "NAXIS   =                    3")},
		{"negative size", setCard(3, "NAXIS1  =                   -5")},
		{"huge size", setCard(3, "NAXIS1  =           9999999999")},
		{"BZERO 0", setCard(6, "BZERO   =                    0")},
		{"unterminated string", setCard(8, "A       = 'abc")},
		{"bad value", setCard(8, "A       = what")},
		{"text after string", setCard(8, "A       = 'abc' x")},
		{"bad keyword", setCard(8, "a b     = 1")},
		{"non-ASCII", setCard(8, "A       = '\xff'")},
		{"garbage after END", func() []byte { b := bytes.Clone(good); b[BlockSize-1] = 'x'; return b }()},
		{"bad data padding", func() []byte { b := bytes.Clone(good); b[len(b)-1] = 1; return b }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Decode(bytes.NewReader(tc.b)); err == nil {
				t.Error("Decode succeeded, want an error")
			}
		})
	}
	if _, err := Decode(bytes.NewReader(good)); err != nil {
		t.Fatalf("the unmodified file does not decode: %v", err)
	}
}

func TestDecodeNoEnd(t *testing.T) {
	// Blocks of blank cards forever: Decode must give up, not read on.
	r := io.LimitReader(infiniteBlanks{}, int64(maxHeaderBlocks+10)*BlockSize)
	b := []byte("SIMPLE  =                    T" + strings.Repeat(" ", 50))
	if _, err := Decode(io.MultiReader(bytes.NewReader(b), r)); err == nil {
		t.Error("Decode succeeded without an END card")
	}
}

type infiniteBlanks struct{}

func (infiniteBlanks) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

// FuzzDecode checks that Decode never panics and that whatever it accepts
// encodes again to a file that decodes to the same image.
func FuzzDecode(f *testing.F) {
	f.Add(validFile(f))
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte(" "), BlockSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		im, err := Decode(bytes.NewReader(b))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := Encode(&buf, im); err != nil {
			return // e.g. a card this writer refuses (a lower-case comment key is fine, '\'' runs are not)
		}
		again, err := Decode(&buf)
		if err != nil {
			t.Fatalf("re-encoded file does not decode: %v", err)
		}
		if diff := cmp.Diff(im, again); diff != "" {
			t.Fatalf("re-encoded image differs:\n%s", diff)
		}
	})
}

// FuzzStringCard checks that every string the encoder accepts decodes to
// itself (trailing spaces are not significant in FITS).
func FuzzStringCard(f *testing.F) {
	for _, s := range []string{"", "a", "it's", "''", " lead", "trail  ", "/ not a comment", strings.Repeat("x", 68)} {
		f.Add(s, "comment")
	}
	f.Fuzz(func(t *testing.T, s, comment string) {
		im := &Image{Width: 1, Height: 1, Pixels: []uint16{1}, Cards: []Card{{Key: "S", Value: s, Comment: comment}}}
		var buf bytes.Buffer
		if err := Encode(&buf, im); err != nil {
			return
		}
		got, err := Decode(&buf)
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		c, _ := got.Card("S")
		if c.Value != strings.TrimRight(s, " ") {
			t.Fatalf("value %q decoded as %q", s, c.Value)
		}
		if !strings.HasPrefix(strings.TrimSpace(comment), c.Comment) {
			t.Fatalf("comment %q decoded as %q", comment, c.Comment)
		}
	})
}

package camsim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sdss/fliswarm/test/fits"
)

// Fixed properties of the simulated camera.
const (
	cameraModel  = "MicroLine ML4240"
	cameraFWRev  = 258
	cameraHWRev  = 1
	baseTemp     = 20.0 // °C, the camera body
	maxCoolDelta = 50.0 // °C below baseTemp at full cooler power
	biasLevel    = 1000
)

// errBusy is returned when an exposure is asked for while one runs.
var errBusy = errors.New("camera is already exposing")

// camera is the state of the simulated camera, shared by all connections.
type camera struct {
	name     string
	serial   string
	obs      string
	dataDir  string
	scale    float64
	readout  time.Duration
	width    int
	height   int
	now      func() time.Time
	imageDir string // gcam or fcam
	prefix   string // gimg or fimg

	mu       sync.Mutex
	hbin     int
	vbin     int
	setpoint float64 // NaN: cooler off
	exposing bool
	expStart time.Time
	expTime  float64

	fileMu sync.Mutex // held while choosing a sequence number and writing
}

func newCamera(cfg Config) *camera {
	c := &camera{
		name:     CameraName(cfg.Name, cfg.Observatory),
		obs:      cfg.Observatory,
		dataDir:  cfg.DataDir,
		scale:    cfg.ExposureScale,
		readout:  cfg.Readout,
		width:    cfg.Width,
		height:   cfg.Height,
		now:      cfg.Now,
		imageDir: "gcam",
		prefix:   "gimg",
		hbin:     1,
		vbin:     1,
		setpoint: math.NaN(),
	}
	if strings.HasPrefix(c.name, "fvc") {
		c.imageDir, c.prefix = "fcam", "fimg"
	}
	c.serial = fmt.Sprintf("ML%07d", serialNumber(c.name))
	return c
}

// serialNumber derives a stable fake serial number from the camera name.
func serialNumber(name string) uint32 {
	var h uint32 = 2166136261
	for i := 0; i < len(name); i++ {
		h = (h ^ uint32(name[i])) * 16777619
	}
	return h % 10000000
}

// temps returns the CCD temperature and the cooler power (percent).
func (c *camera) temps() (ccd, power float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tempsLocked()
}

func (c *camera) tempsLocked() (ccd, power float64) {
	if math.IsNaN(c.setpoint) {
		return baseTemp, 0
	}
	return c.setpoint, math.Round(100*(baseTemp-c.setpoint)/maxCoolDelta*10) / 10
}

// status returns the values of the status keyword, in the order of the
// keyword dictionary.
func (c *camera) status() []any {
	c.mu.Lock()
	defer c.mu.Unlock()
	ccd, power := c.tempsLocked()
	left := 0.0
	if c.exposing && c.scale > 0 {
		elapsed := c.now().Sub(c.expStart).Seconds() / c.scale
		left = math.Max(0, math.Round((c.expTime-elapsed)*1000)/1000)
	}
	w, h := c.width/c.hbin, c.height/c.vbin
	return []any{
		c.name, cameraModel, c.serial, cameraFWRev, cameraHWRev,
		c.hbin, c.vbin,
		0, 0, w, h, // visible area
		0, 0, w, h, // area
		ccd, baseTemp, left, power,
	}
}

// setTemperature sets the cooler setpoint; the simulated CCD reaches it at
// once.
func (c *camera) setTemperature(t float64) error {
	if math.IsNaN(t) || math.IsInf(t, 0) || t > baseTemp || t < baseTemp-maxCoolDelta {
		return fmt.Errorf("setpoint %v out of range [%v, %v]", t, baseTemp-maxCoolDelta, baseTemp)
	}
	c.mu.Lock()
	c.setpoint = t
	c.mu.Unlock()
	return nil
}

func (c *camera) binning() (h, v int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hbin, c.vbin
}

func (c *camera) setBinning(h, v int) error {
	if h < 1 || v < 1 || h > 16 || v > 16 {
		return fmt.Errorf("binning %dx%d out of range [1, 16]", h, v)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.exposing {
		return errBusy
	}
	c.hbin, c.vbin = h, v
	return nil
}

// exposure is one requested exposure sequence.
type exposure struct {
	expTime   float64
	count     int
	filename  string // base name override, only with count 1
	imageType string // object, flat, dark or bias
}

// exposureState is the exposure_state keyword.
type exposureState struct {
	state     string
	remaining float64
	current   int
}

// begin marks the camera busy, or fails if it already is.
func (c *camera) begin() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.exposing {
		return errBusy
	}
	c.exposing = true
	return nil
}

func (c *camera) end() {
	c.mu.Lock()
	c.exposing = false
	c.mu.Unlock()
}

// expose runs one exposure of the sequence (the k-th, from 1): integrate,
// read out, write the file. It reports each state through report and
// returns the path written.
func (c *camera) expose(ctx context.Context, e exposure, k int, report func(exposureState)) (string, error) {
	start := c.now()
	c.mu.Lock()
	c.expStart, c.expTime = start, e.expTime
	c.mu.Unlock()

	report(exposureState{state: "integrating", remaining: e.expTime, current: k})
	if err := sleep(ctx, time.Duration(e.expTime*c.scale*float64(time.Second))); err != nil {
		return "", err
	}
	report(exposureState{state: "reading", current: k})
	if err := sleep(ctx, c.readout); err != nil {
		return "", err
	}
	path, err := c.writeImage(e, start)
	if err != nil {
		return "", err
	}
	report(exposureState{state: "done", current: k})
	return path, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// MJD returns the modified Julian day of t.
func MJD(t time.Time) int {
	return int(math.Floor(float64(t.Unix())/86400)) + 40587
}

// writeImage writes the exposure's FITS file, under a name nobody else
// uses, and returns its path. The file appears complete or not at all.
func (c *camera) writeImage(e exposure, start time.Time) (string, error) {
	dir := filepath.Join(c.dataDir, c.imageDir, strconv.Itoa(MJD(start)))
	c.fileMu.Lock()
	defer c.fileMu.Unlock()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating image directory: %w", err)
	}
	name := e.filename
	seq := 0
	if name == "" {
		n, err := c.nextSequence(dir)
		if err != nil {
			return "", err
		}
		seq = n
		name = fmt.Sprintf("%s-%s-%04d.fits", c.prefix, c.name, seq)
	}
	path := filepath.Join(dir, name)

	hbin, vbin := c.binning()
	ccd, _ := c.temps()
	img := c.synthesize(e, hbin, vbin, start)
	img.Cards = []fits.Card{
		{Key: "CAMNAME", Value: c.name, Comment: "Camera name"},
		{Key: "CAMTYPE", Value: cameraModel, Comment: "Camera model"},
		{Key: "SERIAL", Value: c.serial, Comment: "Camera serial number"},
		{Key: "IMAGETYP", Value: e.imageType, Comment: "Image type"},
		{Key: "EXPTIME", Value: e.expTime, Comment: "Exposure time [s]"},
		{Key: "DATE-OBS", Value: fits.FormatDate(start), Comment: "Start of the exposure (UTC)"},
		{Key: "MJD", Value: MJD(start), Comment: "Modified Julian day of DATE-OBS"},
		{Key: "OBSERVAT", Value: c.obs, Comment: "Observatory"},
		{Key: "SEQNUM", Value: seq, Comment: "Sequence number (0: explicit file name)"},
		{Key: "CCDTEMP", Value: ccd, Comment: "CCD temperature [C]"},
		{Key: "BINX", Value: hbin, Comment: "Horizontal binning"},
		{Key: "BINY", Value: vbin, Comment: "Vertical binning"},
		{Key: "COMMENT", Comment: "Simulated image written by flicamera-sim"},
	}

	tmp := filepath.Join(dir, "."+name+".part")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return "", fmt.Errorf("creating image file: %w", err)
	}
	if err := fits.Encode(f, img); err != nil {
		f.Close()
		os.Remove(tmp)
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}

// nextSequence returns one more than the highest sequence number of this
// camera's images in dir (1 in an empty directory).
func (c *camera) nextSequence(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("listing %s: %w", dir, err)
	}
	head := c.prefix + "-" + c.name + "-"
	high := 0
	for _, e := range entries {
		num, ok := strings.CutPrefix(e.Name(), head)
		if !ok {
			continue
		}
		num, ok = strings.CutSuffix(num, ".fits")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(num); err == nil && n > high {
			high = n
		}
	}
	return high + 1, nil
}

// synthesize makes the pixels: a bias level with noise, plus a dark
// current (dark), an even illumination (flat) or a few stars (object).
func (c *camera) synthesize(e exposure, hbin, vbin int, start time.Time) *fits.Image {
	w, h := max(c.width/hbin, 1), max(c.height/vbin, 1)
	img := &fits.Image{Width: w, Height: h, Pixels: make([]uint16, w*h)}
	seed := uint64(start.UnixNano())
	rng := rand.New(rand.NewPCG(seed, uint64(serialNumber(c.name))))
	level := float64(biasLevel)
	switch e.imageType {
	case "dark":
		level += 0.5 * e.expTime
	case "flat":
		level += math.Min(20000*e.expTime, 40000)
	}
	for i := range img.Pixels {
		img.Pixels[i] = clamp16(level + float64(rng.IntN(21)-10))
	}
	if e.imageType == "object" {
		for range 20 {
			addStar(img, rng.Float64()*float64(w), rng.Float64()*float64(h),
				(500+rng.Float64()*20000)*math.Max(e.expTime, 0.1), 2.0)
		}
	}
	return img
}

func addStar(img *fits.Image, x0, y0, peak, sigma float64) {
	r := int(4 * sigma)
	for y := max(int(y0)-r, 0); y <= min(int(y0)+r, img.Height-1); y++ {
		for x := max(int(x0)-r, 0); x <= min(int(x0)+r, img.Width-1); x++ {
			dx, dy := float64(x)-x0, float64(y)-y0
			i := y*img.Width + x
			img.Pixels[i] = clamp16(float64(img.Pixels[i]) + peak*math.Exp(-(dx*dx+dy*dy)/(2*sigma*sigma)))
		}
	}
}

func clamp16(v float64) uint16 {
	return uint16(math.Max(0, math.Min(65535, math.Round(v))))
}

package ui

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
	"github.com/batonhq/baton/traffic"
)

// graph is a drawing for an SVG: boxes and arrows placed by a simple
// layered layout (a flow top to bottom, the map left to right).
type graph struct {
	Label         string // what it shows, for those who cannot see it
	Width, Height float64
	Nodes         []node
	Edges         []edge
}

type node struct {
	X, Y, W, H float64 // the box's top left corner and size
	Label      string
	Sub        string // a second line: a status and its attempts, a kind
	Class      string
	Current    bool
	Title      string
}

type edge struct {
	Path  string // an SVG path
	Width float64
	Class string
	Title string
}

// The flow graph's grid.
const (
	cellW, cellH = 190.0, 70.0
	boxW, boxH   = 170.0, 44.0
	pad          = 10.0
)

// flowGraph draws f's steps top to bottom: a sequence in a column,
// parallel branches and a choice's branches side by side between a fork
// and a join, a compensation to the right of its step. With steps (a run's),
// each box shows its step's status and attempts, and the steps under way
// are current.
func flowGraph(f flow.Flow, steps map[string]*store.StepState) *graph {
	b := &flowLayout{g: &graph{Label: fmt.Sprintf("The steps of flow %s v%d", f.Name, f.Version)}, steps: steps}
	w := seqWidth(f.Steps)
	_, rows := b.seq(f.Steps, "", 0, w, 0, -1)
	if len(f.OnFailure) > 0 {
		fw := seqWidth(f.OnFailure)
		b.node(0, rows, fw, "on failure", "", "fork", "")
		b.seq(f.OnFailure, "on_failure/", 0, fw, rows+1, len(b.g.Nodes)-1)
		w = max(w, fw)
	}
	for _, n := range b.g.Nodes {
		b.g.Height = max(b.g.Height, n.Y+n.H+pad)
	}
	b.g.Width = float64(w)*cellW + 2*pad
	return b.g
}

type flowLayout struct {
	g     *graph
	steps map[string]*store.StepState
}

// mainWidth is how many columns a step takes, its compensation aside.
func mainWidth(s flow.Step) int {
	w := 1
	switch {
	case s.Parallel != nil:
		w = 0
		for _, br := range s.Parallel.Branches {
			w += seqWidth(br)
		}
	case s.Choice != nil:
		w = 0
		for _, br := range s.Choice {
			w += seqWidth(br.Steps)
		}
	}
	return max(w, 1)
}

// seqWidth is how many columns a sequence takes: its widest step, and one
// on the right for the compensations when any step has one.
func seqWidth(steps []flow.Step) int {
	w, comp := 1, 0
	for _, s := range steps {
		w = max(w, mainWidth(s))
		if s.Compensate != nil {
			comp = 1
		}
	}
	return w + comp
}

// node adds a box centred over columns col to col+w, in row, and returns
// its index.
func (b *flowLayout) node(col, row, w int, label, path, class, kind string) int {
	n := node{W: boxW, H: boxH, Label: label, Class: class, Sub: kind, Title: label}
	n.X = pad + (float64(col)+float64(w)/2)*cellW - boxW/2
	n.Y = pad + float64(row)*cellH
	if st := b.steps[path]; st != nil && path != "" {
		n.Class = "step-" + string(st.Status)
		n.Sub = string(st.Status)
		if st.Attempts > 1 {
			n.Sub += fmt.Sprintf(" · %d attempts", st.Attempts)
		}
		n.Current = st.Status == store.StepRunning || st.Status == store.StepWaiting
		if st.Error != "" {
			n.Title += ": " + st.Error
		}
	}
	b.g.Nodes = append(b.g.Nodes, n)
	return len(b.g.Nodes) - 1
}

// arrow joins the bottom of node a to the top of node c.
func (b *flowLayout) arrow(a, c int, class string) {
	if a < 0 {
		return
	}
	p, q := b.g.Nodes[a], b.g.Nodes[c]
	x1, y1, x2, y2 := p.X+p.W/2, p.Y+p.H, q.X+q.W/2, q.Y
	if class == "compensate" {
		x1, y1, x2, y2 = p.X+p.W, p.Y+p.H/2, q.X, q.Y+q.H/2
	}
	b.g.Edges = append(b.g.Edges, edge{Path: fmt.Sprintf("M%.0f %.0f C%.0f %.0f %.0f %.0f %.0f %.0f", x1, y1, x1, (y1+y2)/2, x2, (y1+y2)/2, x2, y2), Width: 1.5, Class: class})
}

// seq lays out steps from row down in columns col to col+w, joined to the
// node prev (-1: none). It returns the last node and the next free row.
func (b *flowLayout) seq(steps []flow.Step, prefix string, col, w, row, prev int) (last, next int) {
	main := w
	if slices.ContainsFunc(steps, func(s flow.Step) bool { return s.Compensate != nil }) {
		main = w - 1
	}
	for _, s := range steps {
		path := prefix + s.Name
		n := b.node(col, row, main, s.Name, path, "step", kind(s))
		b.arrow(prev, n, "")
		if s.Compensate != nil {
			c := b.node(col+main, row, 1, s.Compensate.Name, path+"/compensate/"+s.Compensate.Name, "compensation", "compensates "+s.Name)
			b.arrow(n, c, "compensate")
		}
		row++
		var branches [][]flow.Step
		if s.Parallel != nil {
			branches = s.Parallel.Branches
		}
		for _, br := range s.Choice {
			branches = append(branches, br.Steps)
		}
		if len(branches) > 0 {
			var ends []int
			bottom := row
			c := col + (main-branchesWidth(branches))/2
			for i, br := range branches {
				bw := seqWidth(br)
				end, r := b.seq(br, fmt.Sprintf("%s/%d/", path, i), c, bw, row, n)
				ends = append(ends, end)
				bottom = max(bottom, r)
				c += bw
			}
			j := b.node(col, bottom, main, "join", "", "fork", "")
			for _, e := range ends {
				b.arrow(e, j, "")
			}
			n, row = j, bottom+1
		}
		prev = n
	}
	return prev, row
}

func branchesWidth(branches [][]flow.Step) int {
	w := 0
	for _, br := range branches {
		w += seqWidth(br)
	}
	return w
}

// kind says in a word or two what a step does.
func kind(s flow.Step) string {
	switch {
	case s.Send != nil:
		return "send " + s.Send.Type
	case s.HTTP != nil:
		return "http " + cmp.Or(s.HTTP.Method, "GET")
	case s.Parallel != nil:
		return "parallel, join " + cmp.Or(s.Parallel.Join, "all")
	case s.Choice != nil:
		return "choice"
	case s.Sleep != 0:
		return "sleep"
	case s.Until != "":
		return "until"
	case s.Wait != nil:
		return "wait " + s.Wait.Type
	case s.Notify != nil:
		return "notify"
	case s.Fail != "":
		return "fail"
	}
	return ""
}

// The map's grid.
const (
	mapColW, mapRowH = 230.0, 60.0
	mapBoxW, mapBoxH = 190.0, 40.0
)

// mapGraph draws the traffic map left to right: who publishes, the types,
// the groups that consume them, the types those emit, and so on, each node
// in the column of its distance from a publisher. An edge's width grows
// with its count (logarithmically); it is red where the group failed at or
// dead-lettered the type.
func mapGraph(m traffic.Map) *graph {
	type key struct{ kind, name string }
	layer := map[key]int{}
	var order []key
	adj := map[key][]key{}
	from := func(e traffic.Edge) (key, key) {
		switch e.Kind {
		case traffic.Publishes:
			return key{"source", e.From}, key{"type", e.To}
		case traffic.Consumes:
			return key{"type", e.From}, key{"group", e.To}
		}
		return key{"group", e.From}, key{"type", e.To}
	}
	seen := map[key]bool{}
	note := func(k key) {
		if !seen[k] {
			seen[k] = true
			order = append(order, k)
		}
	}
	indeg := map[key]int{}
	for _, e := range m.Edges {
		a, b := from(e)
		note(a)
		note(b)
		adj[a] = append(adj[a], b)
		indeg[b]++
	}
	// Breadth first from the nodes nothing leads to; a cycle with no
	// such entry starts from its first node.
	var queue []key
	for _, k := range order {
		if indeg[k] == 0 {
			layer[k] = 0
			queue = append(queue, k)
		}
	}
	for len(layer) < len(order) {
		for len(queue) > 0 {
			k := queue[0]
			queue = queue[1:]
			for _, n := range adj[k] {
				if _, ok := layer[n]; !ok {
					layer[n] = layer[k] + 1
					queue = append(queue, n)
				}
			}
		}
		for _, k := range order {
			if _, ok := layer[k]; !ok {
				layer[k] = 0
				queue = append(queue, k)
				break
			}
		}
	}
	g := &graph{Label: fmt.Sprintf("The choreography map: %d edges between sources, event types and consumer groups", len(m.Edges))}
	rows := map[int]int{}
	index := map[key]int{}
	for _, k := range order {
		l := layer[k]
		n := node{X: pad + float64(l)*mapColW, Y: pad + float64(rows[l])*mapRowH, W: mapBoxW, H: mapBoxH,
			Label: k.name, Sub: k.kind, Class: "map-" + k.kind, Title: k.kind + " " + k.name}
		rows[l]++
		index[k] = len(g.Nodes)
		g.Nodes = append(g.Nodes, n)
		g.Width = max(g.Width, n.X+n.W+pad)
		g.Height = max(g.Height, n.Y+n.H+pad)
	}
	most := 1
	for _, e := range m.Edges {
		most = max(most, e.Count+e.Failed+e.DeadLettered)
	}
	for _, e := range m.Edges {
		a, b := from(e)
		p, q := g.Nodes[index[a]], g.Nodes[index[b]]
		x1, y1, x2, y2 := p.X+p.W, p.Y+p.H/2, q.X, q.Y+q.H/2
		bend := math.Max(40, math.Abs(x2-x1)/2)
		if x2 <= x1 {
			// Back to an earlier column: loop round below.
			x1, x2 = p.X+p.W/2, q.X+q.W/2
			y1, y2 = p.Y+p.H, q.Y+q.H
		}
		ed := edge{Path: fmt.Sprintf("M%.0f %.0f C%.0f %.0f %.0f %.0f %.0f %.0f", x1, y1, x1+bend, y1, x2-bend, y2, x2, y2),
			Width: 1 + 5*math.Log1p(float64(e.Count+e.Failed+e.DeadLettered))/math.Log1p(float64(most)), Class: "map-" + string(e.Kind),
			Title: fmt.Sprintf("%s %s %s: %d", e.From, e.Kind, e.To, e.Count)}
		if e.Kind == traffic.Consumes {
			ed.Title += fmt.Sprintf(" handled, %d failed attempts, %d dead-lettered, %d duplicates", e.Failed, e.DeadLettered, e.Duplicates)
			if e.DeadLettered > 0 || e.Failed > 0 {
				ed.Class += " bad"
			}
		}
		g.Edges = append(g.Edges, ed)
	}
	slices.SortStableFunc(g.Edges, func(a, b edge) int { return cmp.Compare(a.Width, b.Width) })
	return g
}

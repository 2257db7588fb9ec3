package moderate

import (
	"context"
	"html"
	"regexp"
	"slices"
	"strings"

	"github.com/batonhq/baton"
)

// The events of the moderator.
const (
	// TypeModerationRequested asks for pages to be moderated; its data is
	// an object of pages: slug -> the page's HTML.
	TypeModerationRequested = "moderation.requested.v1"
	// TypeModerationReport answers it; its data is a Report.
	TypeModerationReport = "moderation.report.v1"
)

// Verdicts.
const (
	VerdictOK      = "ok"
	VerdictFlagged = "flagged"
)

// Report is the moderator's answer: a verdict for every page.
type Report struct {
	Pages    int       `json:"pages"`
	Flagged  int       `json:"flagged"`
	Verdicts []Verdict `json:"verdicts"` // by slug
}

// Verdict is one page's verdict.
type Verdict struct {
	Page    string  `json:"page"` // the slug
	Title   string  `json:"title"`
	Verdict string  `json:"verdict"` // ok or flagged
	Matches []Match `json:"matches,omitempty"`
}

// Rules lists the names of the rules that matched, without repeats.
func (v Verdict) Rules() []string {
	var out []string
	for _, m := range v.Matches {
		if !slices.Contains(out, m.Rule) {
			out = append(out, m.Rule)
		}
	}
	return out
}

// Match is a rule that matched a page, and the text it matched.
type Match struct {
	Rule string `json:"rule"`
	Text string `json:"text"`
}

// Rule flags the pages whose title or text match its pattern.
type Rule struct {
	Name    string
	Pattern *regexp.Regexp
}

// Words returns a rule matching any of the words or phrases, whole and in
// any case: "scam" matches "SCAM" but not "scampi".
func Words(name string, words ...string) Rule {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = strings.ReplaceAll(regexp.QuoteMeta(w), " ", `\s+`)
	}
	return Rule{Name: name, Pattern: regexp.MustCompile(`(?i)\b(?:` + strings.Join(quoted, "|") + `)\b`)}
}

// DefaultRules are the example's rules: a list of banned words, and money
// asked for by wire.
func DefaultRules() []Rule {
	return []Rule{
		Words("banned-word", "scam", "counterfeit", "miracle cure"),
		{Name: "payment-bait", Pattern: regexp.MustCompile(`(?i)\bwire\s+(?:me|us)\b`)},
	}
}

// Moderator is the moderator service: rule-based, it needs no state, and
// moderating the same pages twice gives the same report.
type Moderator struct {
	rules []Rule
}

// NewModerator returns a moderator applying rules.
func NewModerator(rules []Rule) *Moderator { return &Moderator{rules: rules} }

// Service is the moderator as Baton runs it.
func (m *Moderator) Service() baton.Service {
	return baton.Service{Name: "moderator", Handlers: []baton.Handler{
		{Type: TypeModerationRequested, Func: m.handle},
	}}
}

func (m *Moderator) handle(ctx context.Context, e baton.Event) ([]baton.Event, error) {
	var pages map[string]string
	if err := e.Decode(&pages); err != nil {
		return nil, baton.Permanent(err)
	}
	if len(pages) == 0 {
		return nil, baton.Permanent(baton.Errorf(baton.Invalid, "handle "+e.Type, "event %s: no pages to moderate", e.ID))
	}
	out, err := baton.NewEvent(TypeModerationReport, e.Subject, m.Moderate(pages))
	if err != nil {
		return nil, err
	}
	return []baton.Event{out}, nil
}

// Moderate gives a verdict on each page (slug -> HTML), by slug.
func (m *Moderator) Moderate(pages map[string]string) Report {
	r := Report{Pages: len(pages), Verdicts: []Verdict{}}
	for slug, doc := range pages {
		title, text := extract(doc)
		v := Verdict{Page: slug, Title: title, Verdict: VerdictOK}
		for _, rule := range m.rules {
			for _, found := range rule.Pattern.FindAllString(title+"\n"+text, -1) {
				if !slices.Contains(v.Matches, Match{rule.Name, found}) {
					v.Matches = append(v.Matches, Match{Rule: rule.Name, Text: found})
				}
			}
		}
		if len(v.Matches) > 0 {
			v.Verdict = VerdictFlagged
			r.Flagged++
		}
		r.Verdicts = append(r.Verdicts, v)
	}
	slices.SortFunc(r.Verdicts, func(a, b Verdict) int { return strings.Compare(a.Page, b.Page) })
	return r
}

var (
	titleRE  = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)
	bodyRE   = regexp.MustCompile(`(?is)<body[^>]*>(.*)</body>`)
	hiddenRE = regexp.MustCompile(`(?is)<script[^>]*>.*?</script>|<style[^>]*>.*?</style>|<nav[^>]*>.*?</nav>`)
	tagRE    = regexp.MustCompile(`<[^>]*>`)
)

// extract returns an HTML page's title and the text of its body (without
// navigation, scripts and styles), entities decoded and spaces collapsed.
// A page that is not HTML is all text.
func extract(doc string) (title, text string) {
	if m := titleRE.FindStringSubmatch(doc); m != nil {
		title = clean(m[1])
	}
	body := doc
	if m := bodyRE.FindStringSubmatch(doc); m != nil {
		body = m[1]
	}
	body = hiddenRE.ReplaceAllString(body, " ")
	return title, clean(tagRE.ReplaceAllString(body, " "))
}

func clean(s string) string {
	return strings.Join(strings.Fields(html.UnescapeString(s)), " ")
}

// Package moderate is the content-moderation example: a web scraper, a
// content moderator and an orchestrator, as in the seeds' content-moderation
// system.
//
//   - Site is a local test site. POST /login with {"worker": NAME} sets a
//     session cookie; private pages answer 401 without one. GET /pages lists
//     the pages; GET /pages/SLUG?worker=NAME serves one as HTML. The site
//     records who fetched what with which cookie, so a test can check that
//     every page was fetched once and that no worker used another's session.
//   - Flow generates the "moderate" flow from the list of pages: the list is
//     data, and so is a flow definition. Its first step is a Parallel step
//     with one branch per worker; a branch logs its worker in and fetches its
//     share of the pages, every HTTP step of the branch with Session set to
//     the worker's name, so each worker has its own cookie jar. Each page's
//     HTML is mapped into the run's variables under the page's slug. The
//     second step sends the variables to the moderator.
//   - Moderator is a plain baton.Service with rule-based moderation (word
//     lists and regular expressions over each page's title and text). It
//     takes moderation.requested.v1 and answers moderation.report.v1: a
//     verdict per page, with the rules that matched. The report is the
//     run's result.
//   - Run wires them on the embedded backend (a bus runtime for the
//     moderator, a coordinator for the flow), runs one sweep of the site and
//     returns the report with the site's own account of the requests.
package moderate

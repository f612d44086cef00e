"""The HTTP half of conntui: test connections whose every step is seen.

`client` (the instrumented client: the seven steps, timed), `records` (what a probe records:
steps, responses, connections, results; the modes and limits), `timeline` (a record as the
step bars people read), `server` (the loopback HTTP/1.1 test server), `runner` (the dashboard's tests: a thread per
probe, the built-in server, the records, the "mine" four-tuples), `experiments` (the chapter's
experiments as functions returning plain records: the four modes compared, Nagle on and off) and
`comparison_text` (their records as aligned bars). None of it imports
Textual; the socket half (`conntui.sources`) never imports it.
"""

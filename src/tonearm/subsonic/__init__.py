"""The Subsonic / OpenSubsonic API at `/rest/*`: a thin protocol layer over Tonearm's domains, so
the apps people already use (DSub, Symfonium, Feishin, Sonixd, Tempo, substreamer, play:Sub) work
against a Tonearm server. See docs/subsonic.md.

- `protocol`: parameters, errors, the XML / JSON / JSONP envelope and the method registry;
- `auth`: API keys, token + salt against the app password, legacy `p=` if enabled;
- `objects`: the song / album / artist read model;
- `handlers/`: one module per group of methods, as the specification groups them;
- `routes`: the one Starlette route that dispatches them.
"""

"""`siptool exporter`: siptool's probes served to Prometheus as blackbox_exporter serves its
own.  It sits above cli/: a probe is the command itself, parsed by click and run in the
exporter's event loop (probes.py), so the exporter and the command line cannot disagree.

  config.py   the TOML modules, checked at start
  http.py     a small HTTP/1.1 server on asyncio streams
  probes.py   one probe: the module's flags and the target through the command, its metrics
  app.py      the paths, the concurrency limit, the exporter's own metrics, serving
"""

"""The web console: static files (static/) the browser runs, talking MQTT 5 over the broker's
WebSocket listener, and `ionm console` (server.py) that serves them. docs/console.md."""

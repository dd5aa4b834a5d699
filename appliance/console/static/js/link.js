// The MQTT 5 connection (MQTT.js over the broker's WebSocket listener) and the command
// request/response of docs/mqtt.md. The login lives only in this client's options (MQTT.js
// needs it to reconnect): never in storage, cookies or the DOM.

/* global mqtt */ // vendor/mqtt.min.js, a classic script, sets window.mqtt

const COMMAND_TIMEOUT_MS = 5000;
const REASONS = { 135: "not authorised", 128: "unspecified error", 144: "topic name invalid",
  151: "quota exceeded", 153: "payload format invalid" };

export class CommandError extends Error {}

export class Link {
  constructor({ url, username, password, root, onMessage, onState }) {
    this.root = root;
    this.username = username;
    this.onMessage = onMessage;
    this.onState = onState;
    this.pending = new Map(); // correlation id -> {resolve, reject, timer}
    this.counter = 0;
    this.client = mqtt.connect(url, {
      protocolVersion: 5, username, password, clean: true, reconnectPeriod: 2000,
      connectTimeout: 5000, keepalive: 30, resubscribe: true,
      clientId: `console-${username}-${Math.random().toString(16).slice(2, 10)}`,
    });
    this.ready = new Promise((resolve, reject) => {
      this.client.once("connect", resolve);
      this.client.once("error", (e) => reject(loginError(e)));
    });
    this.client.on("connect", () => { this.subscribe(); onState("connected"); });
    this.client.on("close", () => onState("disconnected"));
    this.client.on("reconnect", () => onState("reconnecting"));
    this.client.on("message", (topic, payload, packet) => this.message(topic, payload, packet));
  }

  subscribe() {
    const r = this.root;
    // QoS 1 where a lost message matters (alarms, status, case, replies)
    this.client.subscribe({
      [`${r}/+/status`]: { qos: 1 }, [`${r}/+/case`]: { qos: 1 }, [`${r}/+/alarm/#`]: { qos: 1 },
      [`${r}/+/annotation`]: { qos: 1 }, [`${r}/+/baseline/#`]: { qos: 1 },
      [`${r}/+/reply/${this.username}/#`]: { qos: 1 }, [`${r}/+/health`]: { qos: 0 },
      [`${r}/+/trend/#`]: { qos: 0 }, [`${r}/+/waveform/#`]: { qos: 0 },
    });
  }

  message(topic, payload, packet) {
    let body;
    try {
      body = JSON.parse(new TextDecoder().decode(payload));
    } catch {
      return; // not ours
    }
    if (topic.includes("/reply/")) {
      const corr = packet.properties && packet.properties.correlationData;
      const id = corr ? new TextDecoder().decode(corr) : "";
      const p = this.pending.get(id);
      if (p) {
        this.pending.delete(id);
        clearTimeout(p.timer);
        if (body.ok) p.resolve(body.result || {});
        else p.reject(new CommandError(`${body.error.code}: ${body.error.message}`));
      }
      return;
    }
    this.onMessage(topic, body, packet.retain);
  }

  /** Send a command; resolves with its result, rejects with a CommandError saying why. */
  command(device, name, args = {}) {
    const id = `${Date.now().toString(36)}-${++this.counter}`;
    const topic = `${this.root}/${device}/cmd/${this.username}/${name}`;
    const props = { responseTopic: `${this.root}/${device}/reply/${this.username}/${id}`,
      correlationData: id };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new CommandError(`no reply from ${device} within ${COMMAND_TIMEOUT_MS / 1000} s`));
      }, COMMAND_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      this.client.publish(topic, JSON.stringify(args), { qos: 1, properties: props }, (err) => {
        if (!err) return;
        clearTimeout(timer);
        this.pending.delete(id);
        // the broker's ACL said no: PUBACK with a failure reason code (135, not authorised)
        const why = REASONS[err.code] || err.message;
        reject(new CommandError(`refused: ${why}`));
      });
    });
  }

  end() {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    this.client.end(true);
  }
}

function loginError(e) {
  // mosquitto 2.0 answers a wrong password with 135 (not authorised), not 134
  const known = { 134: "wrong username or password",
    135: "not authorised (wrong username or password?)", 4: "wrong username or password",
    5: "not authorised (wrong username or password?)" };
  return new Error(known[e && e.code] || (e && e.message) || "cannot connect");
}

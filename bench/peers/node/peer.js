// Benchmark peer: the same job as mcm-bridge (Kafka shop messages -> MCM User Event API), done
// the way Moloco's reference JavaScript sink connector does it (see
// shared/reference/mcm-user-event-api.md §4.2), written for this benchmark:
//   - kafkajs consumer, `eachMessage` handler, one awaited POST per message (kafkajs' default:
//     one partition at a time, so one request in flight);
//   - axios POST to {base}/rmp/event/v1/platforms/{platform}/userevents;
//   - 3 attempts in total, start delay 100 ms plus 0-99 ms jitter, doubling, retrying on any
//     error (network or any non-2xx); after the last attempt the message is logged and skipped;
//   - offsets are committed by kafkajs after the handler resolves (autoCommit).
// The mapping is the minimal one for the `shop.events` shape the benchmark loads (same fields as
// bench/bridge.yaml, a regex instead of full user-agent parsing). Configuration comes from the environment:
//   BROKERS, TOPIC, GROUP, MCM_BASE_URL, MCM_PLATFORM_ID, MCM_API_KEY.
'use strict';

const crypto = require('node:crypto');
const axios = require('axios');
const { Kafka, logLevel } = require('kafkajs');

const env = (name) => {
  const v = (process.env[name] || '').trim();
  if (!v) {
    console.error(`missing ${name}`);
    process.exit(2);
  }
  return v;
};

const brokers = env('BROKERS').split(',');
const topic = env('TOPIC');
const group = env('GROUP');
const platform = env('MCM_PLATFORM_ID');
const apiKey = env('MCM_API_KEY');
const url = `${env('MCM_BASE_URL').replace(/\/+$/, '')}/rmp/event/v1/platforms/${platform}/userevents`;
const headers = { 'Content-Type': 'application/json', Accept: 'application/json', 'X-API-Key': apiKey };

const CHANNELS = { web: 'SITE', ios: 'APP', android: 'APP' };

const sha256 = (s) => crypto.createHash('sha256').update(s.trim().toLowerCase()).digest('hex');
const money = (cents, currency) => ({ amount: cents / 100, currency: String(currency).toUpperCase() });

// Removes null and undefined recursively, as the reference connector does before sending.
function stripNulls(v) {
  if (Array.isArray(v)) return v.filter((x) => x != null).map(stripNulls);
  if (v && typeof v === 'object') {
    const out = {};
    for (const [k, x] of Object.entries(v)) if (x != null) out[k] = stripNulls(x);
    return out;
  }
  return v;
}

// Just enough user-agent parsing for the benchmark's agents (the bridge uses the full uap-core
// rules): APP events must name a mobile OS.
function deviceOs(ua) {
  let m = /iPhone OS (\d+)_(\d+)/.exec(ua || '');
  if (m) return { os: 'iOS', os_version: `${m[1]}.${m[2]}`, model: 'iPhone' };
  m = /Android (\d+(?:\.\d+)*); ([^;)]+)/.exec(ua || '');
  if (m) return { os: 'Android', os_version: m[1], model: m[2].trim() };
  return {};
}

// shop.events message -> MCM event, or null for kinds the benchmark does not map.
function mapEvent(m) {
  const ev = {
    id: m.event_id,
    timestamp: m.occurred_at * 1000,
    channel_type: CHANNELS[String(m.channel || '').toLowerCase()] || 'SITE',
    user_id: m.customer && m.customer.email ? sha256(m.customer.email) : null,
    device: { ...deviceOs(m.user_agent), persistent_id: m.device_id, ua: m.user_agent },
  };
  const p = m.product;
  switch (m.kind) {
    case 'page_view':
      if (m.page && m.page.type === 'home') return { ...ev, event_type: 'HOME', page_id: 'HOME_PAGE' };
      return { ...ev, event_type: 'PAGE_VIEW', page_id: m.page && m.page.path };
    case 'product_view':
      return {
        ...ev,
        event_type: 'ITEM_PAGE_VIEW',
        page_id: `PRODUCT_DETAIL_PAGE:${p.sku}`,
        items: [{ id: p.sku, seller_id: p.seller, price: money(p.price_cents, p.currency) }],
      };
    case 'cart_add':
      return {
        ...ev,
        event_type: 'ADD_TO_CART',
        page_id: 'CART_PAGE',
        items: [{ id: p.sku, quantity: m.quantity || 1, price: money(p.price_cents, p.currency) }],
      };
    case 'search':
      return { ...ev, event_type: 'SEARCH', search_query: String(m.query).trim() };
    default:
      return null;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function sendWithRetry(event, maxAttempts = 3) {
  let delay = 100;
  for (let attempt = 1; ; attempt++) {
    try {
      return await axios.post(url, event, { headers, timeout: 10000 });
    } catch (err) {
      if (attempt >= maxAttempts) throw err;
      await sleep(delay + Math.floor(Math.random() * 100));
      delay *= 2;
    }
  }
}

async function main() {
  const kafka = new Kafka({ clientId: 'bench-peer-node', brokers, logLevel: logLevel.WARN });
  const consumer = kafka.consumer({ groupId: group });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let failed = 0;
  await consumer.run({
    eachMessage: async ({ message }) => {
      let event;
      try {
        event = mapEvent(JSON.parse(message.value.toString()));
      } catch (e) {
        failed++;
        return;
      }
      if (!event) return;
      try {
        await sendWithRetry(stripNulls(event));
      } catch (e) {
        failed++;
        if (failed <= 5) console.error(`delivery failed: ${e.message}`);
      }
    },
  });
  const stop = async () => {
    try {
      await consumer.disconnect();
    } finally {
      process.exit(0);
    }
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

// Drives Debian's firefox-esr (headless) through Fanout's own pages with puppeteer-core
// over WebDriver BiDi: whip.html publishes Firefox's fake camera and microphone, then
// whep.html plays the stream back in a second tab. Run by TestClientsFirefox:
//
//   node firefox.mjs WHIP_PAGE_URL WHEP_PAGE_URL SERVER_HOST PROFILE_DIR
//
// Prints "RESULT {json}" lines (the pages' fanoutStats() and timings) and exits 0 once the
// player has decoded frames, 1 on an error or after 30 s.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const puppeteer = require(process.env.FANOUT_NPM_DIR + "/node_modules/puppeteer-core");

const [whipURL, whepURL, host, profile] = process.argv.slice(2);
const t0 = Date.now();
const result = (name, value) => console.log("RESULT " + JSON.stringify({ name, ms: Date.now() - t0, value }));

async function waitStats(page, name, ok) {
  const deadline = Date.now() + 20000;
  for (;;) {
    const s = await page.evaluate(() => window.fanoutStats());
    if (s.error) throw new Error(`${name}: ${s.error}`);
    if (ok(s)) return s;
    if (Date.now() > deadline) throw new Error(`${name}: not there after 20 s: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath: "/usr/bin/firefox-esr",
  headless: true,
  userDataDir: profile,
  extraPrefsFirefox: {
    "media.navigator.streams.fake": true,
    "media.navigator.permission.disabled": true,
    // getUserMedia needs a secure context; the page is plain HTTP on the server's address.
    "dom.securecontext.allowlist": host,
    "media.autoplay.default": 0,
    "media.autoplay.blocking_policy": 0,
    // Offer the veth address itself, not an mDNS name.
    "media.peerconnection.ice.obfuscate_host_addresses": false,
  },
});
let code = 0;
const timer = setTimeout(() => {
  console.log("firefox.mjs: timed out");
  process.exit(1);
}, 30000);
try {
  result("browser", (await browser.version()));
  const pub = await browser.newPage();
  pub.on("console", (m) => console.log("[whip.html]", m.text()));
  await pub.goto(whipURL);
  result("publisher", await waitStats(pub, "publisher", (s) => s.state === "connected" && s.framesSent > 0));
  const play = await browser.newPage();
  play.on("console", (m) => console.log("[whep.html]", m.text()));
  await play.goto(whepURL);
  result("player", await waitStats(play, "player", (s) => s.state === "connected" && s.framesDecoded > 0));
  await new Promise((r) => setTimeout(r, 2000));
  result("player2s", await waitStats(play, "player", (s) => s.framesDecoded > 0));
  result("publisher2s", await waitStats(pub, "publisher", (s) => s.framesSent > 0));
} catch (err) {
  console.log("firefox.mjs:", err.message);
  code = 1;
}
clearTimeout(timer);
await browser.close();
process.exit(code);

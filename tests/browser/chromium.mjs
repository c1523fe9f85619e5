// The flags every script launches Debian's Chromium with (DESIGN.md): no
// sandbox (tests run as root), no GPU, no traffic of Chromium's own (the
// machine's network is closed), autoplay without a gesture; fake camera
// and microphone unless media is false; and, with background, no
// throttling of pages in the background (two pages playing at once).
export function chromiumArgs({ media = true, background = false } = {}) {
  const args = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required',
  ];
  if (media) {
    args.push('--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream');
  }
  if (background) {
    args.push('--disable-background-timer-throttling', '--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows');
  }
  return args;
}

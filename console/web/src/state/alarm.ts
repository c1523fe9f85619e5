// The alarm sound for red alerts: a two-tone chime, made with Web Audio so
// that no sound file is shipped, repeated every few seconds while a red
// alert is not yet acknowledged, until muted. The mute is kept in this
// browser.

import { ref } from 'vue';

const storageKey = 'lookout.alarm.muted';

function storedMuted(): boolean {
  try {
    return localStorage.getItem(storageKey) === '1';
  } catch {
    return false;
  }
}

export const muted = ref(storedMuted());
/** sounding is true while the alarm repeats (shown, and read by tests). */
export const sounding = ref(false);

let ctx: AudioContext | null = null;
let timer: ReturnType<typeof setInterval> | undefined;

function chime() {
  try {
    ctx ??= new AudioContext();
    if (ctx.state === 'suspended') void ctx.resume();
    const t0 = ctx.currentTime;
    for (const [i, freq] of [880, 660].entries()) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = 'sine';
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, t0 + i * 0.35);
      gain.gain.exponentialRampToValueAtTime(0.3, t0 + i * 0.35 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t0 + i * 0.35 + 0.3);
      osc.connect(gain).connect(ctx.destination);
      osc.start(t0 + i * 0.35);
      osc.stop(t0 + i * 0.35 + 0.32);
    }
  } catch {
    // No audio here (the page has not been interacted with yet): the red
    // colour and the banner still say it.
  }
}

/** setAlarm makes the alarm sound (or not) given whether an unacknowledged red alert is open. */
export function setAlarm(wanted: boolean) {
  const on = wanted && !muted.value;
  if (on === sounding.value) return;
  sounding.value = on;
  clearInterval(timer);
  if (on) {
    chime();
    timer = setInterval(chime, 4000);
  }
}

export function setMuted(m: boolean, wanted: boolean) {
  muted.value = m;
  try {
    localStorage.setItem(storageKey, m ? '1' : '0');
  } catch {
    // Not kept.
  }
  setAlarm(wanted);
}

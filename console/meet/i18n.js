// The meeting page's strings: Simplified Chinese first, English beside it.
// Every key is in both; console/meet/meet_test.go checks that each key the
// page uses is here in both languages, with the same {placeholders}.
//
// The language is, in order: lang= in the fragment or the query, the last
// choice made on the page (localStorage), Chinese.

const zh = {
  'app.title': '视频会议',
  'lang.switch': 'English',
  'common.ok': '确定',
  'common.cancel': '取消',
  'common.close': '关闭',

  'state.prejoin': '未加入',
  'state.joining': '正在连接…',
  'state.joined': '已连接',
  'state.reconnecting': '网络中断，正在重新连接…',
  'state.failed': '连接失败',
  'state.failedwhy': '连接失败：{why}',
  'state.left': '已离开会议',
  'state.removed': '已被移出会议',
  'state.media': '音视频连接不稳定，正在恢复…',

  'prejoin.title': '加入会议',
  'prejoin.as': '您将以「{name}」的身份加入',
  'prejoin.room': '会议：{room}',
  'prejoin.checking': '正在检查摄像头和麦克风…',
  'prejoin.viewer': '您以旁听身份加入：可以看和听，不能发言。',
  'prejoin.camera': '摄像头',
  'prejoin.microphone': '麦克风',
  'prejoin.camoff': '摄像头已关闭',
  'prejoin.join': '加入会议',
  'prejoin.retry': '重新检测设备',

  'media.denied': '您没有允许本页面使用摄像头和麦克风。您仍可以加入会议，只看和听。如需发言：点地址栏左侧的图标，允许使用摄像头和麦克风，再点「重新检测设备」。',
  'media.camdenied': '您没有允许使用摄像头，将只用麦克风加入。如需视频，请在地址栏左侧的图标中允许使用摄像头。',
  'media.micdenied': '您没有允许使用麦克风，别人将听不到您。如需发言，请在地址栏左侧的图标中允许使用麦克风。',
  'media.nocamera': '没有找到摄像头，将只用麦克风加入。',
  'media.cambusy': '摄像头正被其他程序使用，将只用麦克风加入。',
  'media.nomic': '没有找到麦克风，别人将听不到您。',
  'media.none': '没有找到摄像头和麦克风，您可以只看和听。',
  'media.busy': '摄像头或麦克风正被其他程序使用。请关闭其他程序后点「重新检测设备」。',
  'media.insecure': '此页面不是通过安全连接（HTTPS）打开的，浏览器不允许使用摄像头和麦克风。您仍可以只看和听。',
  'media.unsupported': '此浏览器不能使用摄像头和麦克风。您仍可以只看和听。',
  'media.error': '无法打开摄像头或麦克风：{error}',

  'ctl.mic.mute': '静音',
  'ctl.mic.unmute': '取消静音',
  'ctl.cam.stop': '关闭视频',
  'ctl.cam.start': '开启视频',
  'ctl.screen.start': '共享屏幕',
  'ctl.screen.stop': '停止共享',
  'ctl.people': '成员',
  'ctl.chat': '聊天',
  'ctl.leave': '离开',
  'ctl.lock': '锁定会议',
  'ctl.unlock': '解除锁定',
  'room.locked': '会议已锁定',

  'tile.you': '{name}（我）',
  'tile.paused': '网络较差，已暂停视频',
  'tile.screen': '{name} 的屏幕共享',
  'tile.myscreen': '您正在共享屏幕',
  'tile.muted': '已静音',
  'role.host': '主持人',
  'role.participant': '参会人',
  'role.viewer': '旁听',

  'host.menu': '管理 {name}',
  'host.mute': '静音',
  'host.stopvideo': '关闭视频',
  'host.spotlight': '点名',
  'host.unspotlight': '结束点名',
  'host.remove': '移出会议',
  'host.removeconfirm': '确定将「{name}」移出会议吗？',

  'people.title': '成员（{n}）',
  'chat.title': '聊天',
  'chat.placeholder': '输入消息',
  'chat.send': '发送',
  'chat.empty': '还没有消息',
  'chat.unavailable': '您不能发送消息',
  'chat.toolong': '消息太长',
  'chat.notsent': '消息未发出：连接已断开',

  'consent.title': '点名',
  'consent.audio': '主持人请您发言。是否打开麦克风？',
  'consent.video': '主持人请您打开摄像头。是否同意？',
  'consent.accept': '同意',
  'consent.decline': '拒绝',

  'notice.joined': '{name} 加入了会议',
  'notice.mutedby': '{name} 已将您静音',
  'notice.camoffby': '{name} 关闭了您的视频',
  'notice.locked': '会议已锁定，新成员无法加入',
  'notice.unlocked': '会议已解除锁定',
  'notice.spotlight': '主持人点名：{name}',
  'notice.spotlightme': '主持人点名请您发言',
  'notice.spotlightend': '点名结束',
  'notice.audioblocked': '点此开启声音',
  'notice.screenfailed': '无法共享屏幕：{error}',

  'left.left': '{name} 离开了会议',
  'left.removed': '{name} 被主持人移出会议',
  'left.disconnected': '{name} 的网络已断开',
  'left.timeout': '{name} 的音视频连接超时',
  'left.replaced': '{name} 在其他设备上重新加入',
  'left.closed': '会议已结束',
  'left.rejected': '{name} 未获准进入会议',

  'ended.left': '您已离开会议。',
  'ended.removed': '主持人已将您移出会议。',
  'ended.replaced': '您已在其他设备或窗口加入此会议，这里的连接已结束。',
  'ended.rejoin': '重新加入',

  'err.notoken': '链接中没有会议令牌。请使用完整的会议链接。',
  'err.unsupported': '此浏览器不支持视频会议。请使用新版 Chrome、Edge、Firefox 或 Safari。',
  'err.bad_token': '会议链接无效或已过期。请向工作人员索取新的链接。',
  'err.not_joined': '加入会议失败，请重试。',
  'err.join_timeout': '加入会议超时，请检查网络后重试。',
  'err.already_joined': '已经加入了会议。',
  'err.room_not_found': '会议不存在或已结束。',
  'err.room_locked': '会议已锁定，暂时无法加入。请联系主持人。',
  'err.room_full': '会议人数已满。',
  'err.removed': '您已被主持人移出此会议。',
  'err.forbidden': '您没有进行此操作的权限。',
  'err.bad_sdp': '音视频协商失败。',
  'err.no_participant': '该成员已不在会议中。',
  'err.not_waiting': '该成员已不在等候室中。',
  'err.in_lobby': '您正在等候室中，请等待主持人允许进入。',
  'err.too_slow': '网络太慢，正在重新连接。',
  'err.internal': '服务器暂时出错，请稍后重试。',
  'err.rate_limited': '操作过于频繁，请稍候。',
  'err.bad_json': '页面与服务器版本不一致，请刷新页面。',
  'err.unknown_type': '页面与服务器版本不一致，请刷新页面。',
  'err.bad_field': '页面与服务器版本不一致，请刷新页面。',
  'err.too_large': '消息太大，未能发送。',
  'err.unknown': '服务器错误（{code}）。',
};

const en = {
  'app.title': 'Video meeting',
  'lang.switch': '中文',
  'common.ok': 'OK',
  'common.cancel': 'Cancel',
  'common.close': 'Close',

  'state.prejoin': 'Not joined',
  'state.joining': 'Connecting…',
  'state.joined': 'Connected',
  'state.reconnecting': 'Connection lost, reconnecting…',
  'state.failed': 'Connection failed',
  'state.failedwhy': 'Connection failed: {why}',
  'state.left': 'You left the meeting',
  'state.removed': 'Removed from the meeting',
  'state.media': 'Audio and video unstable, recovering…',

  'prejoin.title': 'Join the meeting',
  'prejoin.as': 'You join as “{name}”',
  'prejoin.room': 'Meeting: {room}',
  'prejoin.checking': 'Checking the camera and microphone…',
  'prejoin.viewer': 'You join as a viewer: you can watch and listen, not speak.',
  'prejoin.camera': 'Camera',
  'prejoin.microphone': 'Microphone',
  'prejoin.camoff': 'Camera off',
  'prejoin.join': 'Join',
  'prejoin.retry': 'Check devices again',

  'media.denied': 'You did not allow this page to use the camera and microphone. You can still join to watch and listen. To speak: press the icon left of the address, allow the camera and microphone, then press “Check devices again”.',
  'media.camdenied': 'You did not allow the camera: you join with the microphone only. For video, allow the camera with the icon left of the address.',
  'media.micdenied': 'You did not allow the microphone: the others will not hear you. To speak, allow the microphone with the icon left of the address.',
  'media.nocamera': 'No camera found: you join with the microphone only.',
  'media.cambusy': 'Another program is using the camera: you join with the microphone only.',
  'media.nomic': 'No microphone found: the others will not hear you.',
  'media.none': 'No camera or microphone found: you can watch and listen.',
  'media.busy': 'Another program is using the camera or microphone. Close it, then press “Check devices again”.',
  'media.insecure': 'This page was not opened over a secure connection (HTTPS), so the browser allows no camera or microphone. You can still watch and listen.',
  'media.unsupported': 'This browser cannot use a camera or microphone. You can still watch and listen.',
  'media.error': 'Cannot open the camera or microphone: {error}',

  'ctl.mic.mute': 'Mute',
  'ctl.mic.unmute': 'Unmute',
  'ctl.cam.stop': 'Stop video',
  'ctl.cam.start': 'Start video',
  'ctl.screen.start': 'Share',
  'ctl.screen.stop': 'Stop share',
  'ctl.people': 'People',
  'ctl.chat': 'Chat',
  'ctl.leave': 'Leave',
  'ctl.lock': 'Lock meeting',
  'ctl.unlock': 'Unlock meeting',
  'room.locked': 'Meeting locked',

  'tile.you': '{name} (you)',
  'tile.paused': 'Video paused: weak network',
  'tile.screen': '{name}’s screen',
  'tile.myscreen': 'You are sharing your screen',
  'tile.muted': 'Muted',
  'role.host': 'Host',
  'role.participant': 'Participant',
  'role.viewer': 'Viewer',

  'host.menu': 'Manage {name}',
  'host.mute': 'Mute',
  'host.stopvideo': 'Stop video',
  'host.spotlight': 'Roll call',
  'host.unspotlight': 'End roll call',
  'host.remove': 'Remove',
  'host.removeconfirm': 'Remove “{name}” from the meeting?',

  'people.title': 'People ({n})',
  'chat.title': 'Chat',
  'chat.placeholder': 'Type a message',
  'chat.send': 'Send',
  'chat.empty': 'No messages yet',
  'chat.unavailable': 'You cannot send messages',
  'chat.toolong': 'The message is too long',
  'chat.notsent': 'Not sent: the connection is down',

  'consent.title': 'Roll call',
  'consent.audio': 'The host asks you to speak. Turn your microphone on?',
  'consent.video': 'The host asks you to turn your camera on. Agree?',
  'consent.accept': 'Accept',
  'consent.decline': 'Decline',

  'notice.joined': '{name} joined',
  'notice.mutedby': '{name} muted you',
  'notice.camoffby': '{name} stopped your video',
  'notice.locked': 'The meeting is locked: no one new can join',
  'notice.unlocked': 'The meeting is unlocked',
  'notice.spotlight': 'Roll call: {name}',
  'notice.spotlightme': 'Roll call: the host asks you to speak',
  'notice.spotlightend': 'Roll call ended',
  'notice.audioblocked': 'Tap here to turn the sound on',
  'notice.screenfailed': 'Cannot share the screen: {error}',

  'left.left': '{name} left',
  'left.removed': '{name} was removed by the host',
  'left.disconnected': '{name} lost their connection',
  'left.timeout': '{name}’s audio and video timed out',
  'left.replaced': '{name} joined again from another device',
  'left.closed': 'The meeting has ended',
  'left.rejected': '{name} was not let in',

  'ended.left': 'You left the meeting.',
  'ended.removed': 'The host removed you from the meeting.',
  'ended.replaced': 'You joined this meeting from another device or window; this connection has ended.',
  'ended.rejoin': 'Rejoin',

  'err.notoken': 'The link has no meeting token. Use the whole meeting link.',
  'err.unsupported': 'This browser cannot take part in video meetings. Use a recent Chrome, Edge, Firefox or Safari.',
  'err.bad_token': 'The meeting link is invalid or has expired. Ask the staff for a new one.',
  'err.not_joined': 'Joining failed; try again.',
  'err.join_timeout': 'Joining timed out: check the network and try again.',
  'err.already_joined': 'Already in the meeting.',
  'err.room_not_found': 'The meeting does not exist or has ended.',
  'err.room_locked': 'The meeting is locked: you cannot join now. Ask the host.',
  'err.room_full': 'The meeting is full.',
  'err.removed': 'The host removed you from this meeting.',
  'err.forbidden': 'You are not allowed to do that.',
  'err.bad_sdp': 'Audio and video negotiation failed.',
  'err.no_participant': 'That participant is no longer in the meeting.',
  'err.not_waiting': 'That participant is no longer waiting in the lobby.',
  'err.in_lobby': 'You are in the lobby: wait until the host lets you in.',
  'err.too_slow': 'The connection is too slow: reconnecting.',
  'err.internal': 'The server had a problem; please try again.',
  'err.rate_limited': 'Too many messages at once: please wait a moment.',
  'err.bad_json': 'The page and the server disagree: reload the page.',
  'err.unknown_type': 'The page and the server disagree: reload the page.',
  'err.bad_field': 'The page and the server disagree: reload the page.',
  'err.too_large': 'The message is too large and was not sent.',
  'err.unknown': 'Server error ({code}).',
};

export const strings = Object.freeze({ zh: Object.freeze(zh), en: Object.freeze(en) });

const STORE = 'lookout.meet.lang';
let current = 'zh';

function valid(l) {
  return l === 'zh' || l === 'en' ? l : '';
}

/** Chooses the language of the link, or of the last choice, or Chinese. */
export function initLang() {
  const frag = new URLSearchParams(location.hash.slice(1)).get('lang');
  const query = new URLSearchParams(location.search).get('lang');
  let stored = '';
  try {
    stored = localStorage.getItem(STORE) || '';
  } catch {
    // Storage off: the link or Chinese.
  }
  apply(valid(frag) || valid(query) || valid(stored) || 'zh');
  return current;
}

function apply(l) {
  current = l;
  document.documentElement.lang = l === 'zh' ? 'zh-CN' : 'en';
}

/** Switches the language and remembers the choice. */
export function setLang(l) {
  apply(valid(l) || 'zh');
  try {
    localStorage.setItem(STORE, current);
  } catch {
    // Not remembered.
  }
}

/** The current language: zh or en. */
export function lang() {
  return current;
}

/** Whether a key has a string. */
export function has(key) {
  return Object.prototype.hasOwnProperty.call(zh, key);
}

/** The string of a key in the current language, with {placeholders} filled. */
export function t(key, vars) {
  const table = strings[current];
  let s = Object.prototype.hasOwnProperty.call(table, key) ? table[key] : zh[key];
  if (s === undefined) {
    console.warn(`lookout-meet: no string ${key}`);
    return key;
  }
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (Object.prototype.hasOwnProperty.call(vars, k) ? String(vars[k]) : m));
  return s;
}

/**
 * Writes the strings of the static page: data-i18n (text), and
 * data-i18n-title, data-i18n-aria (aria-label), data-i18n-placeholder.
 */
export function applyI18n(root) {
  for (const e of root.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
  for (const e of root.querySelectorAll('[data-i18n-title]')) e.title = t(e.dataset.i18nTitle);
  for (const e of root.querySelectorAll('[data-i18n-aria]')) e.setAttribute('aria-label', t(e.dataset.i18nAria));
  for (const e of root.querySelectorAll('[data-i18n-placeholder]')) e.placeholder = t(e.dataset.i18nPlaceholder);
}

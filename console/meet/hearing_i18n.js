// The resident's hearing page's strings (hearing.html, hearing.js), in one
// table: Simplified Chinese, the language of the hearing. Plain words for
// someone who may never have joined a video call: what happened, and what
// to do next. Placeholders are {name}.

const zh = {
  'app.title': '信访远程听证',
  'app.opening': '正在打开听证链接…',

  'notice.heading': '您被邀请参加远程听证',
  'notice.subject': '事项',
  'notice.organisation': '经办单位',
  'notice.time': '听证时间',
  'notice.petitioner': '信访人',
  'notice.noaccount': '无需注册账号，无需安装应用，用本页面即可参加。',

  'check.heading': '检查摄像头和麦克风',
  'check.checking': '正在打开摄像头和麦克风…',
  'check.ok': '摄像头和麦克风正常。请对着手机说话，绿色音量条会跳动。',
  'check.audioonly': '将只用语音参加（不开摄像头）。',
  'check.next': '下一步',
  'check.retry': '重新检测',
  'check.audioonlybtn': '只用语音参加',
  'check.meter': '麦克风音量',
  'check.preview': '我的画面',
  'check.denied': '浏览器没有获得使用摄像头和麦克风的许可。请按下面的步骤打开：',
  'check.camdenied': '浏览器没有获得使用摄像头的许可。您可以按下面的步骤打开摄像头，或者只用语音参加。',
  'check.step1': '点地址栏左边的锁形图标，或打开浏览器的“设置”→“网站设置”；',
  'check.step2': '找到“摄像头”和“麦克风”，都选“允许”；',
  'check.step3': '回到本页，点下面的“重新检测”。',
  'check.wechat': '如果是在微信里打开的，请点右上角“···”，选“在浏览器中打开”。',
  'check.nocamera': '没有找到可用的摄像头。您可以只用语音参加听证。',
  'check.nomic': '没有找到可用的麦克风。听证需要麦克风，请换一部手机打开链接，或联系经办人员。',
  'check.busy': '摄像头或麦克风正被其他应用使用。请先关闭通话、录像等应用，再点“重新检测”。',
  'check.insecure': '这个页面无法使用摄像头和麦克风。请用手机自带的浏览器打开链接。',
  'check.error': '打开摄像头和麦克风时出错。请点“重新检测”；仍不行时，请联系经办人员。',

  'consent.heading': '听证告知',
  'consent.recorded': '本次听证将全程录音录像。',
  'consent.purpose': '录像仅用于信访事项的办理和存档，依法保存，不用于其他用途。',
  'consent.speak': '听证中，您可以陈述意见、说明情况、提供证据。',
  'consent.choice': '如果您不同意录音录像，可以申请到现场参加听证。',
  'consent.agree': '同意并进入',
  'consent.disagree': '不同意',

  'declined.heading': '您没有同意录音录像',
  'declined.text': '远程听证需要全程录音录像。您可以联系经办人员，申请到现场参加听证，您的权利不受影响。',
  'declined.back': '返回重新选择',

  'lobby.heading': '请稍候，经办人员将很快接入',
  'lobby.entering': '正在进入…',
  'lobby.text': '您已进入等候室。请保持本页面打开，不要锁屏。',
  'lobby.leave': '离开',

  'call.officer': '经办人员',
  'call.self': '我',
  'call.waiting': '正在连接经办人员的画面…',
  'call.camoff': '对方已关闭摄像头',
  'call.voiceonly': '仅语音',
  'call.unmute': '经办人员请您打开麦克风',
  'call.unmutebtn': '打开麦克风',

  'ctl.mic': '麦克风',
  'ctl.micoff': '已静音',
  'ctl.cam': '摄像头',
  'ctl.camoff': '摄像头已关',
  'ctl.hangup': '挂断',
  'hangup.confirm': '确定要离开听证吗？',
  'hangup.yes': '离开',
  'hangup.no': '继续听证',

  'net.good': '网络良好',
  'net.fair': '网络一般',
  'net.poor': '网络较差',
  'net.audioonly': '网络较差，已切换为仅语音',
  'net.reconnecting': '正在重新连接…',
  'net.connecting': '正在连接…',

  'ended.heading': '听证已结束',
  'ended.text': '感谢您的参与。听证结果将由经办单位依法告知您。',
  'ended.again': '如经办人员告知需要继续，请重新打开听证链接。',

  'left.heading': '您已离开听证',
  'left.text': '如需回到听证，请点下面的按钮。',
  'left.rejoin': '重新进入',

  'out.rejected.heading': '未能进入听证',
  'out.rejected.text': '经办人员没有让您进入本次听证。如有疑问，请联系经办人员。',
  'out.removed.heading': '您已被移出听证',
  'out.removed.text': '如有疑问，请联系经办人员。',
  'out.replaced.heading': '听证已在别处打开',
  'out.replaced.text': '您已在另一个页面进入听证，本页面已停止。请回到那个页面继续。',
  'out.failed.heading': '连接中断',
  'out.failed.text': '暂时无法连接听证。请点“重新打开”；仍不行时，请联系经办人员。',
  'out.room_full.text': '听证室人数已满。请联系经办人员。',
  'out.bad_token.text': '进入凭证已失效。请点“重新打开”。',
  'out.reload': '重新打开',

  'refused.link_invalid.heading': '链接无效',
  'refused.link_invalid.text': '这个听证链接不完整或有误。请核对收到的链接，或联系经办人员重新发送链接。',
  'refused.link_expired.heading': '链接已过期',
  'refused.link_expired.text': '这个听证链接已过有效期。请联系经办人员重新发送链接。',
  'refused.link_revoked.heading': '链接已失效',
  'refused.link_revoked.text': '这个链接已被新的链接代替，或已被撤回。请使用最新收到的链接，或联系经办人员重新发送链接。',
  'refused.link_not_yet_valid.heading': '听证还没有开始',
  'refused.link_not_yet_valid.text': '听证将于 {start} 开始，请在 {opens} 后再打开本链接。',
  'refused.link_other_device.heading': '请使用首次打开链接的手机',
  'refused.link_other_device.text': '这个链接已在另一部手机上打开过。请用那部手机参加；如果那部手机不能用，请联系经办人员，允许在本机打开。',
  'refused.hearing_over.heading': '听证已结束',
  'refused.hearing_over.text': '这个听证已经结束或已取消。如有疑问，请联系经办人员。',
  'refused.unknown.heading': '暂时无法打开听证',
  'refused.unknown.text': '请稍后点“重试”。仍不行时，请联系经办人员。',
  'refused.network.heading': '网络连接失败',
  'refused.network.text': '请检查手机网络，然后点“重试”。',
  'refused.retry': '重试',

  'time.day': '{month}月{day}日',
};

/** The codes of the link's refusals the page words (POST /api/v1/hearing-link/open, join). */
export const REFUSALS = Object.freeze(['link_invalid', 'link_expired', 'link_revoked', 'link_not_yet_valid', 'link_other_device', 'hearing_over']);

/** The string of key, with {name} placeholders filled from vars. */
export function t(key, vars = {}) {
  const s = Object.hasOwn(zh, key) ? zh[key] : key;
  return s.replace(/\{(\w+)\}/g, (m, name) => (Object.hasOwn(vars, name) ? String(vars[name]) : m));
}

/** Whether the table has key. */
export function has(key) {
  return Object.hasOwn(zh, key);
}

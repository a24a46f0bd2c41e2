/*
 * RadGrid reading page: UI strings in Simplified Chinese and English.
 *
 * Every string the page shows goes through t(key, params). Patient data (names, ids,
 * descriptions) and the pre-screen's own finding summaries are never passed through here:
 * they are shown exactly as the hospital or the screening step wrote them.
 *
 * Exposes window.RadI18n = { t, lang, setLang, applyTranslations, formatTime, formatDateTime,
 * locale }. Markup opts in with data-i18n (text), data-i18n-placeholder, data-i18n-title and
 * data-i18n-aria (aria-label).
 */
(() => {
  'use strict';

  const STRINGS = {
    en: {
      'app.title': 'RadGrid Reading',
      'lang.label': 'Language',
      'signout': 'Sign out',
      'live.live': 'Live',
      'live.connecting': 'Connecting…',
      'live.offline': 'Offline',
      'live.title': 'Live updates of your worklist',

      'login.heading': 'Sign in',
      'login.intro': 'Remote reading for RadGrid experts.',
      'login.user': 'User',
      'login.password': 'Password',
      'login.submit': 'Sign in',
      'login.busy': 'Signing in…',
      'login.badCredentials': 'Wrong user name or password.',
      'login.throttled': 'Too many attempts. Try again in {s} s.',
      'login.lapsed': 'Your credentials have lapsed. Please contact the coordinator.',
      'login.expired': 'Your session has ended. Please sign in again.',
      'login.signedOut': 'You have signed out.',
      'login.failed': 'Sign-in failed ({code}).',

      'wl.heading': 'Worklist',
      'wl.refresh': 'Refresh',
      'wl.updated': 'Updated {time}',
      'wl.count': '{offered} offered · {accepted} accepted',
      'wl.empty': 'No cases are offered to you right now.',
      'wl.col.priority': 'Priority',
      'wl.col.state': 'State',
      'wl.col.study': 'Study',
      'wl.col.specialty': 'Specialty',
      'wl.col.site': 'Site',
      'wl.col.prescreen': 'Pre-screen',
      'wl.col.due': 'Due',
      'wl.col.actions': 'Actions',
      'wl.images': '{n} images',
      'wl.partial': 'partial',
      'wl.partialTitle': 'Some images of this study could not be processed',
      'wl.escalated': 'escalated',
      'wl.escalatedTitle': 'Priority raised from {p}',
      'wl.accept': 'Accept',
      'wl.acceptOpen': 'Accept & open',
      'wl.open': 'Open',
      'wl.decline': 'Decline',
      'wl.release': 'Release',
      'wl.reason': 'Reason…',
      'wl.accepted': 'Case accepted.',
      'wl.declined': 'Case declined.',
      'wl.released': 'Case released.',
      'wl.confirmRelease': 'Release this case? It will no longer be assigned to you.',
      'wl.newOffer': 'New {p} case offered to you.',

      'priority.stat': 'STAT',
      'priority.urgent': 'Urgent',
      'priority.routine': 'Routine',
      'priority.bulk': 'Bulk',
      'state.offered': 'Offered',
      'state.accepted': 'Accepted',
      'urgency.critical': 'Critical',
      'urgency.urgent': 'Urgent',
      'urgency.routine': 'Routine',
      'urgency.none': 'No finding',

      'reason.conflict': 'Conflict of interest',
      'reason.outside-specialty': 'Outside my specialty',
      'reason.workload': 'Workload',
      'reason.not-credentialed': 'Not credentialed',
      'reason.technical': 'Technical problem',
      'reason.personal': 'Personal',
      'reason.other': 'Other',

      'dur.days': '{d}d {h}h',
      'sla.left': '{t} left',
      'sla.overdue': 'overdue {t}',
      'sla.acceptBy': 'accept within {t}',
      'sla.acceptPassed': 'acceptance time passed',

      'action.accept': 'accepted',
      'action.decline': 'declined',
      'action.release': 'released',
      'action.accept_timeout': 'not accepted in time',
      'action.complete': 'completed',
      'action.cancel': 'cancelled',

      'err.network': 'Network error. Please try again.',
      'err.forbidden': 'This case is not assigned to you.',
      'err.state': 'The case has changed state; the worklist was refreshed.',
      'err.unavailable': 'The service is busy or unavailable. Try again shortly.',
      'err.notFound': 'Not found.',
      'err.generic': 'Request failed ({code}).',

      'v.back': '← Worklist',
      'v.loading': 'Loading…',
      'v.patientId': 'ID',
      'v.sex': 'Sex',
      'v.birth': 'Born',
      'v.studyDate': 'Study date',
      'v.accession': 'Accession',
      'v.series': 'Series',
      'v.seriesImages': '{n} img',
      'v.seriesNotShown': '{n} not displayable',
      'v.slice': 'slice {k} / {n}',
      'v.noSlices': 'no images',
      'v.noImages': 'No displayable images in this series.',
      'v.imageError': 'The image could not be loaded.',
      'v.window': 'Window',
      'v.windowValue': 'C {c} / W {w}',
      'v.windowDefault': 'as stored',
      'v.keysHint': 'Scroll slices: mouse wheel, ↑ ↓, PgUp / PgDn, Home / End. Window presets: keys 0–4.',
      'v.notAccepted': 'This case is offered to you. Accept it to read and report.',
      'v.accept': 'Accept case',
      'v.caseGone': 'This case is no longer yours to report ({action}).',
      'v.loadFailed': 'The case could not be opened.',
      'v.leaveUnsaved': 'Your report has unsaved changes. Leave anyway?',
      'v.leave': 'Leave',

      'win.default': 'Default',
      'win.brain': 'Brain',
      'win.bone': 'Bone',
      'win.lung': 'Lung',
      'win.soft': 'Soft tissue',

      'f.heading': 'Pre-screen findings',
      'f.none': 'The pre-screen reported no findings.',
      'f.probability': 'Probability reported by the pre-screen',
      'f.source': 'Pre-screen model',
      'f.show': 'Show',
      'f.showTitle': 'Go to the marked slice',

      'r.heading': 'Report',
      'r.findings': 'Findings',
      'r.impression': 'Impression',
      'r.critical': 'Critical result (the referring team must be notified)',
      'r.save': 'Save draft',
      'r.sign': 'Sign report',
      'r.status.none': 'Not started',
      'r.status.draft': 'Draft saved {time}',
      'r.status.final': 'Signed {time}',
      'r.status.amended': 'Signed, with addenda · {time}',
      'r.dirty': 'Unsaved changes',
      'r.saved': 'Draft saved.',
      'r.signed': 'Report signed. The case is complete.',
      'r.needImpression': 'Write an impression before signing.',
      'r.confirmSign': 'Sign this report? Once signed it can only be changed by an addendum.',
      'r.confirmSignCritical': 'It is marked as a critical result.',
      'r.confirmOk': 'Sign',
      'r.needAccept': 'Accept the case before reporting it.',
      'r.signedBy': 'Signed by {name} ({id}), {time}',
      'r.hash': 'Content hash',
      'r.criticalFlag': 'Critical result',
      'r.addenda': 'Addenda',
      'r.addendum': 'Addendum',
      'r.addendumReason': 'Reason for the addendum',
      'r.addendumSubmit': 'Sign addendum',
      'r.addendumAdded': 'Addendum signed.',
      'r.addendumEmpty': 'Write the addendum and its reason.',
      'r.addendumBy': '{name}, {time}: {reason}',

      'common.cancel': 'Cancel',
      'common.ok': 'OK',
      'common.close': 'Close',
    },

    zh: {
      'app.title': 'RadGrid 远程阅片',
      'lang.label': '语言',
      'signout': '退出登录',
      'live.live': '实时',
      'live.connecting': '连接中…',
      'live.offline': '离线',
      'live.title': '工作列表实时更新',

      'login.heading': '登录',
      'login.intro': 'RadGrid 专家远程阅片。',
      'login.user': '用户名',
      'login.password': '密码',
      'login.submit': '登录',
      'login.busy': '正在登录…',
      'login.badCredentials': '用户名或密码错误。',
      'login.throttled': '尝试次数过多，请 {s} 秒后再试。',
      'login.lapsed': '您的执业资质已过期，请联系协调员。',
      'login.expired': '会话已结束，请重新登录。',
      'login.signedOut': '您已退出登录。',
      'login.failed': '登录失败（{code}）。',

      'wl.heading': '工作列表',
      'wl.refresh': '刷新',
      'wl.updated': '更新于 {time}',
      'wl.count': '待接受 {offered} · 已接受 {accepted}',
      'wl.empty': '目前没有分配给您的病例。',
      'wl.col.priority': '优先级',
      'wl.col.state': '状态',
      'wl.col.study': '检查',
      'wl.col.specialty': '专科',
      'wl.col.site': '医院',
      'wl.col.prescreen': 'AI 预筛',
      'wl.col.due': '时限',
      'wl.col.actions': '操作',
      'wl.images': '{n} 幅',
      'wl.partial': '部分缺失',
      'wl.partialTitle': '该检查有部分图像无法处理',
      'wl.escalated': '已升级',
      'wl.escalatedTitle': '优先级由「{p}」升级',
      'wl.accept': '接受',
      'wl.acceptOpen': '接受并打开',
      'wl.open': '打开',
      'wl.decline': '拒绝',
      'wl.release': '退回',
      'wl.reason': '原因…',
      'wl.accepted': '已接受病例。',
      'wl.declined': '已拒绝病例。',
      'wl.released': '已退回病例。',
      'wl.confirmRelease': '确定退回该病例？退回后该病例将不再分配给您。',
      'wl.newOffer': '有新的「{p}」病例分配给您。',

      'priority.stat': '特急',
      'priority.urgent': '加急',
      'priority.routine': '常规',
      'priority.bulk': '批量',
      'state.offered': '待接受',
      'state.accepted': '已接受',
      'urgency.critical': '危急',
      'urgency.urgent': '紧急',
      'urgency.routine': '常规',
      'urgency.none': '无发现',

      'reason.conflict': '利益冲突',
      'reason.outside-specialty': '超出专科范围',
      'reason.workload': '工作量已满',
      'reason.not-credentialed': '无相应资质',
      'reason.technical': '技术问题',
      'reason.personal': '个人原因',
      'reason.other': '其他',

      'dur.days': '{d}天{h}小时',
      'sla.left': '剩余 {t}',
      'sla.overdue': '已超时 {t}',
      'sla.acceptBy': '请在 {t} 内接受',
      'sla.acceptPassed': '接受时限已过',

      'action.accept': '已被接受',
      'action.decline': '已拒绝',
      'action.release': '已退回',
      'action.accept_timeout': '未按时接受',
      'action.complete': '已完成',
      'action.cancel': '已取消',

      'err.network': '网络错误，请重试。',
      'err.forbidden': '该病例未分配给您。',
      'err.state': '病例状态已变更，工作列表已刷新。',
      'err.unavailable': '服务繁忙或暂不可用，请稍后再试。',
      'err.notFound': '未找到。',
      'err.generic': '请求失败（{code}）。',

      'v.back': '← 工作列表',
      'v.loading': '加载中…',
      'v.patientId': '患者号',
      'v.sex': '性别',
      'v.birth': '出生日期',
      'v.studyDate': '检查日期',
      'v.accession': '检查号',
      'v.series': '序列',
      'v.seriesImages': '{n} 幅',
      'v.seriesNotShown': '{n} 幅无法显示',
      'v.slice': '第 {k} / {n} 层',
      'v.noSlices': '无图像',
      'v.noImages': '该序列没有可显示的图像。',
      'v.imageError': '图像加载失败。',
      'v.window': '窗宽窗位',
      'v.windowValue': '窗位 {c} / 窗宽 {w}',
      'v.windowDefault': '按原始设置',
      'v.keysHint': '翻层：鼠标滚轮、↑ ↓、PgUp / PgDn、Home / End。窗预设：数字键 0–4。',
      'v.notAccepted': '该病例正在等待您接受。接受后才能阅片和书写报告。',
      'v.accept': '接受病例',
      'v.caseGone': '该病例已不再由您报告（{action}）。',
      'v.loadFailed': '无法打开该病例。',
      'v.leaveUnsaved': '报告有未保存的修改，仍要离开吗？',
      'v.leave': '离开',

      'win.default': '默认',
      'win.brain': '脑窗',
      'win.bone': '骨窗',
      'win.lung': '肺窗',
      'win.soft': '软组织窗',

      'f.heading': 'AI 预筛发现',
      'f.none': '预筛未报告发现。',
      'f.probability': 'AI 预筛给出的概率',
      'f.source': '预筛模型',
      'f.show': '定位',
      'f.showTitle': '跳转到标记的层面',

      'r.heading': '报告',
      'r.findings': '检查所见',
      'r.impression': '诊断意见',
      'r.critical': '危急值（须通知临床）',
      'r.save': '保存草稿',
      'r.sign': '签发报告',
      'r.status.none': '尚未书写',
      'r.status.draft': '草稿已保存 {time}',
      'r.status.final': '已签发 {time}',
      'r.status.amended': '已签发，含补充报告 · {time}',
      'r.dirty': '有未保存的修改',
      'r.saved': '草稿已保存。',
      'r.signed': '报告已签发，病例已完成。',
      'r.needImpression': '签发前请填写诊断意见。',
      'r.confirmSign': '确认签发该报告？签发后只能通过补充报告修改。',
      'r.confirmSignCritical': '该报告已标记为危急值。',
      'r.confirmOk': '签发',
      'r.needAccept': '请先接受病例，再书写报告。',
      'r.signedBy': '签发医师：{name}（{id}），{time}',
      'r.hash': '内容校验值',
      'r.criticalFlag': '危急值',
      'r.addenda': '补充报告',
      'r.addendum': '补充内容',
      'r.addendumReason': '补充原因',
      'r.addendumSubmit': '签发补充报告',
      'r.addendumAdded': '补充报告已签发。',
      'r.addendumEmpty': '请填写补充内容和原因。',
      'r.addendumBy': '{name}，{time}：{reason}',

      'common.cancel': '取消',
      'common.ok': '确定',
      'common.close': '关闭',
    },
  };

  const STORAGE_KEY = 'radgrid.lang';
  const LOCALES = { en: 'en-GB', zh: 'zh-CN' };
  const HTML_LANG = { en: 'en', zh: 'zh-CN' };

  // The remembered choice wins; otherwise the browser's language (any zh* → Chinese).
  function initialLang() {
    let saved = null;
    try { saved = localStorage.getItem(STORAGE_KEY); } catch (_) { /* storage disabled */ }
    if (saved && STRINGS[saved]) return saved;
    const nav = (navigator.languages && navigator.languages[0]) || navigator.language || 'en';
    return nav.toLowerCase().startsWith('zh') ? 'zh' : 'en';
  }

  let current = initialLang();

  function t(key, params) {
    let s = STRINGS[current][key];
    if (s === undefined) s = STRINGS.en[key];
    if (s === undefined) return key; // a missing key shows itself, which a reviewer will notice
    if (params) s = s.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
    return s;
  }

  function setLang(lang, remember) {
    if (!STRINGS[lang]) return;
    current = lang;
    if (remember) {
      try { localStorage.setItem(STORAGE_KEY, lang); } catch (_) { /* storage disabled */ }
    }
    document.documentElement.lang = HTML_LANG[lang];
    applyTranslations(document);
  }

  function applyTranslations(root) {
    for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
    for (const el of root.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
    for (const el of root.querySelectorAll('[data-i18n-aria]')) el.setAttribute('aria-label', t(el.dataset.i18nAria));
  }

  function locale() { return LOCALES[current]; }

  function formatTime(ms) {
    return new Date(ms).toLocaleTimeString(locale(), { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  }

  function formatDateTime(ms) {
    return new Date(ms).toLocaleString(locale(), {
      year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false,
    });
  }

  window.RadI18n = {
    t, setLang, applyTranslations, formatTime, formatDateTime, locale,
    lang: () => current,
    languages: () => Object.keys(STRINGS),
  };
})();

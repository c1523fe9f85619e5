// The console's pages. Everything but the login needs a session; the map,
// the device pages and the meetings are loaded when first opened, so the
// first page carries neither MapLibre nor ECharts.
import { createRouter, createWebHistory } from 'vue-router';
import { session } from './state/session';
import LoginView from './views/LoginView.vue';
import WallView from './views/WallView.vue';

export const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: '/', redirect: '/wall' },
    { path: '/login', component: LoginView, meta: { public: true } },
    { path: '/wall/:id?', component: WallView },
    { path: '/screen/:id', component: () => import('./views/ScreenView.vue'), meta: { bare: true } },
    { path: '/alerts', component: () => import('./views/AlertsView.vue') },
    { path: '/map', component: () => import('./views/MapView.vue') },
    { path: '/devices', component: () => import('./views/DevicesView.vue') },
    { path: '/devices/:id', component: () => import('./views/DeviceView.vue') },
    { path: '/meetings', component: () => import('./views/MeetingsView.vue') },
    { path: '/petitions', component: () => import('./views/PetitionsView.vue') },
    { path: '/hearings/:id?', component: () => import('./views/HearingsView.vue') },
    { path: '/:rest(.*)*', redirect: '/wall' },
  ],
});

router.beforeEach((to) => {
  if (!to.meta.public && !session.signedIn()) {
    return { path: '/login', query: to.fullPath !== '/wall' ? { next: to.fullPath } : {} };
  }
  return true;
});

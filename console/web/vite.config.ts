/// <reference types="vitest/config" />
// Vite builds the console into dist/, which the Go package beside this file
// embeds. Everything the page loads comes from the binary: no CDN, no web
// font, no map tile from the internet.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { defineConfig, type Plugin } from 'vite';
import vue from '@vitejs/plugin-vue';

// regionGeoJSON builds the map's offline base layer, geo/region.geojson:
// China's provinces, and the prefectures of the demo region's provinces
// (Yunnan and Fujian), from the china-geojson package (MIT), with the
// coordinates rounded to about 100 m, which is what a base outline needs.
function regionGeoJSON(): string {
  const require = createRequire(import.meta.url);
  const dir = join(dirname(require.resolve('china-geojson/package.json')), 'src', 'geojson');
  type Feature = { type: string; properties: Record<string, unknown>; geometry: { type: string; coordinates: unknown } };
  const read = (name: string): Feature[] => JSON.parse(readFileSync(join(dir, name), 'utf8')).features;
  const round = (c: unknown): unknown => (Array.isArray(c) ? c.map(round) : Math.round((c as number) * 1000) / 1000);
  const tag = (fs: Feature[], level: string, province = '') =>
    fs.map((f) => ({
      type: 'Feature',
      properties: { name: f.properties.name, level, province },
      geometry: { type: f.geometry.type, coordinates: round(f.geometry.coordinates) },
    }));
  return JSON.stringify({
    type: 'FeatureCollection',
    features: [
      ...tag(read('china.json'), 'province'),
      ...tag(read('yun_nan_geo.json'), 'prefecture', '云南'),
      ...tag(read('fu_jian_geo.json'), 'prefecture', '福建'),
    ],
  });
}

// cleanDist empties dist/ before a build but for .gitkeep, which is
// committed so that go:embed finds the directory on a clean checkout (Vite's
// own emptyOutDir would remove it too).
function cleanDist(): Plugin {
  return {
    name: 'lookout-clean-dist',
    apply: 'build',
    buildStart() {
      const dir = join(dirname(new URL(import.meta.url).pathname), 'dist');
      let names: string[] = [];
      try {
        names = readdirSync(dir);
      } catch {
        return;
      }
      for (const n of names) if (n !== '.gitkeep') rmSync(join(dir, n), { recursive: true, force: true });
    },
  };
}

function regionPlugin(): Plugin {
  const path = 'geo/region.geojson';
  return {
    name: 'lookout-region-geojson',
    configureServer(server) {
      server.middlewares.use(`/${path}`, (_req, res) => {
        res.setHeader('Content-Type', 'application/geo+json');
        res.end(regionGeoJSON());
      });
    },
    generateBundle() {
      this.emitFile({ type: 'asset', fileName: path, source: regionGeoJSON() });
    },
  };
}

export default defineConfig({
  plugins: [vue(), cleanDist(), regionPlugin()],
  base: '/',
  build: {
    outDir: 'dist',
    // cleanDist empties it, keeping dist/.gitkeep.
    emptyOutDir: false,
    target: 'es2022',
    chunkSizeWarningLimit: 1200,
    rollupOptions: {
      output: {
        // The map and the charts are loaded on demand (dynamic imports);
        // MapLibre gets a chunk of its own, named, so that its size is
        // easy to follow.
        manualChunks(id) {
          if (id.includes('node_modules/maplibre-gl')) return 'maplibre';
          return undefined;
        },
      },
    },
  },
  server: {
    // `npm run dev` against a running `make run`.
    proxy: {
      '/api': { target: 'http://127.0.0.1:8080', changeOrigin: false },
    },
  },
  test: {
    environment: 'happy-dom',
    include: ['src/**/*.test.ts'],
  },
});

// The parts of ECharts the console's charts use, and only those: imported
// statically here so that the bundler drops the rest, and this module
// itself loaded on demand when the first chart opens.
import { init, use } from 'echarts/core';
import { LineChart } from 'echarts/charts';
import { DataZoomComponent, GridComponent, MarkLineComponent, TooltipComponent } from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';

use([LineChart, GridComponent, TooltipComponent, DataZoomComponent, MarkLineComponent, CanvasRenderer]);

export { init };

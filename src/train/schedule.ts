// Learning-rate schedules. Step counts from 0; warmup rises linearly to the peak.
export type ScheduleType = 'multistep' | 'cosine' | 'constant' | 'linear';

export type Schedule = { type: ScheduleType; peak: number; warmupSteps: number; totalSteps: number; minRatio?: number };

/** Learning rate at optimizer step `step` (0-based).
 * multistep (DeepSeek LLM): peak until 80% of the steps, 31.6% of it until 90%, then 10%.
 * cosine: from peak down to minRatio * peak (default 0.1) at the last step. linear: down to 0. */
export function learningRateAt(step: number, s: Schedule): number {
  if (s.warmupSteps > 0 && step < s.warmupSteps) return (s.peak * (step + 1)) / s.warmupSteps;
  const progress = s.totalSteps > s.warmupSteps ? (step - s.warmupSteps) / (s.totalSteps - s.warmupSteps) : 1;
  switch (s.type) {
    case 'constant':
      return s.peak;
    case 'multistep': {
      const f = step / Math.max(1, s.totalSteps);
      return s.peak * (f < 0.8 ? 1 : f < 0.9 ? 0.316 : 0.1);
    }
    case 'cosine': {
      const min = s.minRatio ?? 0.1;
      return s.peak * (min + (1 - min) * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress))));
    }
    case 'linear':
      return s.peak * Math.max(0, 1 - progress);
  }
}

import type * as AsyncHooks from '@opentelemetry/context-async-hooks';
import type * as Core from '@opentelemetry/core';
import type * as OtlpProto from '@opentelemetry/exporter-trace-otlp-proto';
import type * as Resources from '@opentelemetry/resources';
import type * as SdkTraceBase from '@opentelemetry/sdk-trace-base';
import { requireOptional } from '../backends/driver.js';

/*
 * The OpenTelemetry SDK and exporter are optional peers: a service that never switches tracing on
 * installs and loads only `@opentelemetry/api`. Only `import type` of them appears elsewhere in
 * Herald; the values come from here, the first time tracing is switched on (ADR 0027).
 */

const FEATURE = 'OpenTelemetry tracing (createObservability({ tracing }))';

/** The SDK packages tracing needs whatever the exporter, in the order a missing one is reported. */
export const TRACING_SDK_PACKAGES = [
  '@opentelemetry/sdk-trace-base',
  '@opentelemetry/core',
  '@opentelemetry/resources',
  '@opentelemetry/context-async-hooks',
] as const;

export const OTLP_EXPORTER_PACKAGE = '@opentelemetry/exporter-trace-otlp-proto';

export interface TracingSdk {
  readonly base: typeof SdkTraceBase;
  readonly core: typeof Core;
  readonly resources: typeof Resources;
  readonly asyncHooks: typeof AsyncHooks;
}

let sdk: TracingSdk | undefined;

/** The SDK modules; throws DriverMissingError with the `npm install` line when one is missing. */
export function tracingSdk(): TracingSdk {
  sdk ??= {
    base: requireOptional<typeof SdkTraceBase>('@opentelemetry/sdk-trace-base', FEATURE),
    core: requireOptional<typeof Core>('@opentelemetry/core', FEATURE),
    resources: requireOptional<typeof Resources>('@opentelemetry/resources', FEATURE),
    asyncHooks: requireOptional<typeof AsyncHooks>('@opentelemetry/context-async-hooks', FEATURE),
  };
  return sdk;
}

/** The OTLP/protobuf trace exporter, loaded only when the `otlp` exporter is chosen. */
export function otlpExporter(): typeof OtlpProto {
  return requireOptional<typeof OtlpProto>(
    OTLP_EXPORTER_PACKAGE,
    'the OTLP trace exporter (exporter: "otlp")',
  );
}

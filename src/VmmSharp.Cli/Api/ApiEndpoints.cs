using System.Diagnostics;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace VmmSharp.Cli.Api;

/// <summary>
/// Firecracker's routes on a <see cref="MicroVm"/>: each reads its body (bounded), parses it into the model, applies it,
/// and answers 204, 200 with a JSON body, or 400 (413 for a body over the bound) with <c>{"fault_message": ...}</c>.
/// </summary>
internal static class ApiEndpoints
{
    public static void Map(WebApplication app, MicroVm vm)
    {
        ApiJson json = ApiJson.Api;
        // Timing and the Firecracker-style answer for a known path asked with the wrong method (routing's 405).
        app.Use(async (context, next) =>
        {
            long start = Stopwatch.GetTimestamp();
            await next(context).ConfigureAwait(false);
            if (context.Response.StatusCode == StatusCodes.Status405MethodNotAllowed && !context.Response.HasStarted)
            {
                await Results.Json(new Fault { FaultMessage = $"invalid request method and/or path: {context.Request.Method} {context.Request.Path}" },
                    json.Fault, statusCode: StatusCodes.Status400BadRequest).ExecuteAsync(context).ConfigureAwait(false);
            }
            vm.Requests.Record(context.Response.StatusCode, Stopwatch.GetElapsedTime(start));
        });

        app.MapGet("/", () => Results.Json(vm.Info(), json.InstanceInfo));
        app.MapGet("/version", () => Results.Json(new VersionInfo { FirecrackerVersion = MicroVm.Version }, json.VersionInfo));
        app.MapGet("/machine-config", () => Results.Json(vm.MachineConfig(), json.MachineConfiguration));
        app.MapGet("/vm/config", () => Results.Json(vm.Export(), json.FullVmConfiguration));

        app.MapPut("/boot-source", (HttpRequest r) => Apply(r, json.BootSource, b => vm.Configure("boot-source", s => s.SetBootSource(b))));
        app.MapPut("/machine-config", (HttpRequest r) => Apply(r, json.MachineConfiguration, m => vm.Configure("machine-config", s => s.SetMachine(m))));
        app.MapPatch("/machine-config", (HttpRequest r) => Apply(r, json.MachineConfigurationPatch, m => vm.Configure("machine-config", s => s.PatchMachine(m))));
        app.MapPut("/drives/{drive_id}", (string drive_id, HttpRequest r) => Apply(r, json.Drive, d => vm.Configure("drives", s => s.SetDrive(drive_id, d))));
        app.MapPut("/network-interfaces/{iface_id}", (string iface_id, HttpRequest r) => Apply(r, json.NetworkInterface, n => vm.Configure("network-interfaces", s => s.SetNetworkInterface(iface_id, n))));
        app.MapPut("/vsock", (HttpRequest r) => Apply(r, json.Vsock, v => vm.Configure("vsock", s => s.SetVsock(v))));
        app.MapPut("/entropy", (HttpRequest r) => Apply(r, json.EntropyDevice, e => vm.Configure("entropy", s => s.SetEntropy(e))));
        app.MapPut("/logger", (HttpRequest r) => Apply(r, json.LoggerConfig, vm.SetLogger));
        app.MapPut("/metrics", (HttpRequest r) => Apply(r, json.MetricsConfig, vm.SetMetrics));
        app.MapPut("/actions", (HttpRequest r) => Apply(r, json.InstanceActionInfo, a => Act(vm, a)));
        app.MapPatch("/vm", (HttpRequest r) => Apply(r, json.VmState, vm.SetState));
        app.MapPut("/snapshot/create", (HttpRequest r) => Apply(r, json.SnapshotCreateParams, vm.CreateSnapshot));
        app.MapPut("/snapshot/load", (HttpRequest r) => Apply(r, json.SnapshotLoadParams, vm.LoadSnapshot));

        app.MapFallback((HttpRequest r) => Results.Json(
            new Fault { FaultMessage = $"invalid request method and/or path: {r.Method} {r.Path}" },
            json.Fault, statusCode: StatusCodes.Status400BadRequest));
    }

    private static void Act(MicroVm vm, InstanceActionInfo action)
    {
        switch (action.ActionType)
        {
            case "InstanceStart":
                vm.Start();
                break;
            case "SendCtrlAltDel":
                vm.SendCtrlAltDel();
                break;
            case "FlushMetrics":
                vm.FlushMetrics();
                break;
            default:
                throw new ApiFault($"action_type '{action.ActionType}': give InstanceStart, SendCtrlAltDel or FlushMetrics");
        }
    }

    private static async Task<IResult> Apply<T>(HttpRequest request, JsonTypeInfo<T> type, Action<T> apply)
        where T : class
    {
        try
        {
            byte[] body = await ApiRequest.ReadBodyAsync(request.Body, request.ContentLength, request.HttpContext.RequestAborted).ConfigureAwait(false);
            apply(ApiRequest.Parse(body, type));
            return Results.NoContent();
        }
        catch (ApiFault f)
        {
            if (f.Status == ApiFault.PayloadTooLarge)
            {
                // A body over ApiRequest.MaxDrainSize stays partly unread, so the connection cannot carry another
                // request: say so, or a client that reuses it sees a reset.
                request.HttpContext.Response.Headers.Connection = "close";
            }
            return Results.Json(new Fault { FaultMessage = f.Message }, ApiJson.Api.Fault, statusCode: f.Status);
        }
    }
}

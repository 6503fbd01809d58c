using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;

namespace VmmSharp.Cli.Api;

/// <summary>
/// Kestrel serving <see cref="ApiEndpoints"/> over HTTP/1.1 on a Unix socket. Only <c>vmm run --api-sock</c> reaches
/// this class, so a run without the API never loads ASP.NET Core.
/// </summary>
internal sealed class ApiServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly string _socketPath;

    private ApiServer(WebApplication app, string socketPath)
    {
        _app = app;
        _socketPath = socketPath;
    }

    /// <summary>Binds <paramref name="socketPath"/> and starts answering; returns once the socket accepts connections.</summary>
    /// <exception cref="IOException">The socket cannot be created there; the message names the path.</exception>
    public static async Task<ApiServer> StartAsync(string socketPath, MicroVm vm)
    {
        if (File.Exists(socketPath) || Directory.Exists(socketPath))
        {
            throw new IOException($"--api-sock '{socketPath}': the path exists already (a stale socket? remove it)");
        }
        // The empty builder, not the slim one: the slim builder reads appsettings.json with reload-on-change, which
        // watches the current directory recursively (3-11 s of inotify setup from a busy /tmp, measured); the API
        // needs Kestrel and routing, nothing else (no configuration, no logging providers, no environment variables).
        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { Args = [], ApplicationName = "vmm" });
        builder.WebHost.UseKestrelCore();
        builder.Services.AddRoutingCore();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = ApiRequest.MaxDrainSize; // the endpoints refuse over MaxBodySize with a fault message
            k.Limits.MaxRequestHeadersTotalSize = 16 << 10;
            k.ListenUnixSocket(socketPath, o => o.Protocols = HttpProtocols.Http1);
        });
        WebApplication app = builder.Build();
        ApiEndpoints.Map(app, vm);
        try
        {
            await app.StartAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or UnauthorizedAccessException)
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw new IOException($"--api-sock '{socketPath}': cannot listen there: {e.Message}", e);
        }
        return new ApiServer(app, socketPath);
    }

    public async ValueTask DisposeAsync()
    {
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1)))
        {
            await _app.StopAsync(timeout.Token).ConfigureAwait(false);
        }
        await _app.DisposeAsync().ConfigureAwait(false);
        File.Delete(_socketPath);
    }
}

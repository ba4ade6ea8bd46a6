using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoraBridge.Engine;
using LoraBridge.Models;
using LoraBridge.Python;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LoraBridge.Server;

/// <summary>
/// AUTOMATIC1111's web API (<c>/sdapi/v1/…</c>, v1.10.1's JSON) on Kestrel, over the CLI's
/// <see cref="GenerationWorkspace"/>: one loaded model, one job at a time (<see cref="GenerationQueue"/>).
/// </summary>
public sealed partial class A1111Server : IAsyncDisposable
{
    private readonly ServerSettings _settings;
    private readonly Func<string?, GenerationWorkspace> _newWorkspace;
    private readonly PythonBridge _bridge;
    private readonly Dictionary<string, GenerationWorkspace> _workspaces = new(StringComparer.Ordinal);
    private readonly GenerationQueue _queue = new();
    private readonly ServerOptionsState _options;
    private WebApplication? _app;
    private ILogger _log = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    /// <summary>Creates the server; nothing listens until <see cref="StartAsync"/>.</summary>
    /// <param name="settings">Address, auth and limits.</param>
    /// <param name="newWorkspace">Makes the workspace for a checkpoint name (null: the configured default), as <c>generate</c> does.</param>
    /// <param name="bridge">The Python bridge the workspaces share (for the upscaler list).</param>
    public A1111Server(ServerSettings settings, Func<string?, GenerationWorkspace> newWorkspace, PythonBridge bridge)
    {
        settings.Validate();
        _settings = settings;
        _newWorkspace = newWorkspace;
        _bridge = bridge;
        _options = new ServerOptionsState(settings.OutputDir);
    }

    /// <summary>The address the server listens on (after <see cref="StartAsync"/>).</summary>
    public Uri? Address { get; private set; }

    /// <summary>The job queue (progress, interrupt).</summary>
    public GenerationQueue Queue => _queue;

    /// <summary>Binds and starts serving; logs a warning when listening beyond loopback without <c>--api-auth</c>.</summary>
    public async Task StartAsync(CancellationToken ct)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "lorabridge-serve", ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.IncludeScopes = false; });
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
        if (_settings.LogTo is { } extra) builder.Logging.AddProvider(extra);
        builder.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = _settings.MaxRequestBodyBytes;
            k.Listen(ListenAddress(), _settings.Port);
        });
        builder.Services.Configure<RouteOptions>(_ => { });
        var app = builder.Build();
        _log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("LoraBridge.Server");
        app.Use(ErrorsAsJson);
        if (_settings.ApiAuth is not null) app.Use(BasicAuth);
        MapEndpoints(app);
        await app.StartAsync(ct).ConfigureAwait(false);
        _app = app;
        var bound = app.Urls.First();
        Address = new Uri(bound.Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal).Replace("[::]", "[::1]", StringComparison.Ordinal));
        _log.LogInformation("A1111 API on {Url} (sdapi/v1, docs at /openapi.json)", bound);
        if (!_settings.IsLoopback && _settings.ApiAuth is null)
            _log.LogWarning("listening on {Address}, beyond this machine, without --api-auth: anyone who can reach the port can run jobs; add --api-auth user:password", _settings.Listen);
    }

    /// <summary>Serves until <paramref name="ct"/> is cancelled, then stops.</summary>
    public async Task RunUntilCancelledAsync(CancellationToken ct)
    {
        try
        {
            await Task.Delay(Timeout.Infinite, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Ctrl+C: the normal way to stop a server.
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            _queue.Interrupt();
            await _app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            await _app.DisposeAsync().ConfigureAwait(false);
        }
        _queue.Dispose();
    }

    private IPAddress ListenAddress() =>
        _settings.Listen.Equals("localhost", StringComparison.OrdinalIgnoreCase) ? IPAddress.Loopback : IPAddress.Parse(_settings.Listen);

    private CancellationToken Stopping => _app?.Lifetime.ApplicationStopping ?? CancellationToken.None;

    // Every failure leaves as A1111's error JSON: never a stack trace (it is logged at debug level instead).
    private async Task ErrorsAsJson(HttpContext ctx, RequestDelegate next)
    {
        try
        {
            await next(ctx).ConfigureAwait(false);
        }
        catch (ApiError ex)
        {
            await WriteError(ctx, ex.Status, ex.Error, ex.Detail).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is LoraNotFoundException or PromptPlanException or ArgumentException or ModelFileException)
        {
            // What `generate` reports as "error: …" for the user's input: A1111's API answers these with 422.
            await WriteError(ctx, 422, ex is LoraNotFoundException ? "LoraNotFound" : ex.GetType().Name, ex.Message).ConfigureAwait(false);
        }
        catch (PythonCallException ex)
        {
            _log.LogError("{Method} {Path}: Python raised {Message}", ctx.Request.Method, ctx.Request.Path, ex.Message);
            await WriteError(ctx, 500, "PythonError", ex.Message).ConfigureAwait(false);
        }
        catch (BadHttpRequestException ex)
        {
            var detail = ex.StatusCode == 413 ? $"the request body is larger than the limit of {_settings.MaxRequestBodyBytes} bytes" : ex.Message;
            await WriteError(ctx, ex.StatusCode, "BadRequest", detail).ConfigureAwait(false);
        }
        catch (Exception ex) when (!ctx.Response.HasStarted && ex is not OperationCanceledException)
        {
            _log.LogError("{Method} {Path}: {Type}: {Message}", ctx.Request.Method, ctx.Request.Path, ex.GetType().Name, ex.Message);
            _log.LogDebug(ex, "details");
            await WriteError(ctx, 500, ex.GetType().Name, ex.Message).ConfigureAwait(false);
        }
    }

    private static async Task WriteError(HttpContext ctx, int status, string error, string detail)
    {
        if (ctx.Response.HasStarted) return;
        ctx.Response.Clear();
        ctx.Response.StatusCode = status;
        await ctx.Response.WriteAsJsonAsync(ApiError.Body(error, detail)).ConfigureAwait(false);
    }

    // A1111's --api-auth: HTTP basic on every route; a wrong or missing credential gets 401 and nothing runs.
    private async Task BasicAuth(HttpContext ctx, RequestDelegate next)
    {
        if (!Authorized(ctx.Request.Headers.Authorization.ToString(), _settings.Credentials))
        {
            ctx.Response.StatusCode = 401;
            ctx.Response.Headers.WWWAuthenticate = "Basic";
            await ctx.Response.WriteAsJsonAsync(ApiError.Body("HTTPException", "Incorrect username or password")).ConfigureAwait(false);
            return;
        }
        await next(ctx).ConfigureAwait(false);
    }

    /// <summary>
    /// True when <paramref name="header"/> is <c>Basic base64(user:pass)</c> matching one of <paramref name="expected"/>;
    /// every pair is compared in constant time, so the answer's timing tells nothing about which part was wrong.
    /// </summary>
    public static bool Authorized(string header, IReadOnlyList<string> expected)
    {
        if (!header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase)) return false;
        byte[] given;
        try
        {
            given = Convert.FromBase64String(header[6..].Trim());
        }
        catch (FormatException)
        {
            return false;
        }
        bool any = false;
        foreach (var pair in expected)
            any |= System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(given, Encoding.UTF8.GetBytes(pair));
        return any;
    }

    private GenerationWorkspace Workspace(string? checkpoint)
    {
        var key = checkpoint ?? "";
        lock (_workspaces)
        {
            if (!_workspaces.TryGetValue(key, out var w))
            {
                _workspaces[key] = w = _newWorkspace(checkpoint);
                // One process serves many requests: one with the previous request's LoRAs and weights patches nothing;
                // failures and interrupts still restore the base weights.
                w.Engine.KeepNetworksBetweenJobs = true;
            }
            return w;
        }
    }

    /// <summary>A1111 titles are <c>name.safetensors [hash]</c>; the workspace wants the name (null for an empty title).</summary>
    public static string? CheckpointName(string? title)
    {
        if (string.IsNullOrWhiteSpace(title)) return null;
        var t = title.Trim();
        int bracket = t.LastIndexOf(" [", StringComparison.Ordinal);
        return bracket > 0 && t.EndsWith(']') ? t[..bracket] : t;
    }

    private static async Task<string> ReadBody(HttpRequest request)
    {
        using var reader = new StreamReader(request.Body, Encoding.UTF8);
        return await reader.ReadToEndAsync().ConfigureAwait(false);
    }

    private static JsonObject ParseObject(string body)
    {
        try
        {
            return JsonNode.Parse(body) as JsonObject ?? throw new ApiError(422, "ValidationError", "the body must be a JSON object");
        }
        catch (JsonException ex)
        {
            throw new ApiError(400, "JSONDecodeError", $"malformed JSON: {ex.Message}");
        }
    }

    internal static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}

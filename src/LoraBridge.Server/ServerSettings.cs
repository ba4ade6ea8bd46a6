using System.Net;

namespace LoraBridge.Server;

/// <summary>How <c>lorabridge serve</c> listens and what it accepts.</summary>
public sealed record ServerSettings
{
    /// <summary>Address to bind (<c>--listen</c>); loopback unless the user asks for more.</summary>
    public string Listen { get; init; } = "127.0.0.1";

    /// <summary>TCP port (<c>--port</c>); 0 picks a free one (tests). A1111's default is 7860.</summary>
    public int Port { get; init; } = 7860;

    /// <summary>
    /// <c>user:pass</c> for HTTP basic auth (<c>--api-auth</c>, as A1111's), or several pairs separated by commas
    /// (<c>u1:p1,u2:p2</c>, any of them is accepted); null: no auth.
    /// </summary>
    public string? ApiAuth { get; init; }

    /// <summary>Names of the loaded extensions, listed by <c>/sdapi/v1/scripts</c> and matched against <c>alwayson_scripts</c>.</summary>
    public IReadOnlyList<string> Scripts { get; init; } = [];

    /// <summary>Another log destination besides the console (tests read the warnings from it); null: console only.</summary>
    public Microsoft.Extensions.Logging.ILoggerProvider? LogTo { get; init; }

    /// <summary>The <c>user:pass</c> pairs of <see cref="ApiAuth"/> (A1111 splits the flag on commas).</summary>
    public IReadOnlyList<string> Credentials => ApiAuth is null ? [] : ApiAuth.Split(',', StringSplitOptions.TrimEntries);

    /// <summary>Largest request body accepted, in bytes; larger gets 413 before it is read.</summary>
    public long MaxRequestBodyBytes { get; init; } = 32L * 1024 * 1024;

    /// <summary>Where images go when a request sets <c>save_images</c>; A1111's <c>outputs/txt2img-images/DATE</c> when null.</summary>
    public string? OutputDir { get; init; }

    /// <summary>Range limits a request must respect (so one request cannot allocate unbounded memory).</summary>
    public RequestLimits Limits { get; init; } = new();

    /// <summary>True when <see cref="Listen"/> is a loopback address (or <c>localhost</c>).</summary>
    public bool IsLoopback => Listen.Equals("localhost", StringComparison.OrdinalIgnoreCase)
        || (IPAddress.TryParse(Listen, out var ip) && IPAddress.IsLoopback(ip));

    /// <summary>Checks <see cref="ApiAuth"/> and <see cref="Listen"/>.</summary>
    /// <exception cref="ArgumentException">A malformed value, naming the option.</exception>
    public void Validate()
    {
        foreach (var pair in Credentials)
            if (pair.IndexOf(':', StringComparison.Ordinal) <= 0 || pair.EndsWith(':'))
                throw new ArgumentException($"--api-auth must look like user:password or user1:pass1,user2:pass2; '{pair.Split(':')[0]}' has no user or no password");
        if (!IsLoopback && !Listen.Equals("0.0.0.0", StringComparison.Ordinal) && !Listen.Equals("::", StringComparison.Ordinal) && !IPAddress.TryParse(Listen, out _))
            throw new ArgumentException($"--listen must be an IP address (127.0.0.1, 0.0.0.0, ::), got '{Listen}'");
        if (Port is < 0 or > 65535) throw new ArgumentException($"--port must be between 0 and 65535, got {Port}");
    }
}

/// <summary>Upper bounds on a request's work; A1111's UI sliders stop at the same steps and sizes.</summary>
public sealed record RequestLimits
{
    /// <summary>Most sampling steps.</summary>
    public int MaxSteps { get; init; } = 150;

    /// <summary>Largest width or height in pixels.</summary>
    public int MaxSide { get; init; } = 2048;

    /// <summary>Most images per sampler run.</summary>
    public int MaxBatchSize { get; init; } = 8;

    /// <summary>Most sampler runs per request.</summary>
    public int MaxBatchCount { get; init; } = 100;

    /// <summary>Longest prompt or negative prompt, in characters (the prompt parser's work grows with it).</summary>
    public int MaxPromptChars { get; init; } = 20_000;
}

namespace LoraBridge.Python;

/// <summary>A Python exception raised by work run on the Python thread, with its Python details.</summary>
public sealed class PythonCallException : Exception
{
    /// <summary>Creates the exception from the Python type name, message and formatted traceback.</summary>
    public PythonCallException(string pythonType, string message, string pythonTraceback, Exception? inner = null)
        : base($"{pythonType}: {message}", inner)
    {
        PythonType = pythonType;
        PythonMessage = message;
        PythonTraceback = pythonTraceback;
    }

    /// <summary>The Python exception class name, e.g. <c>ValueError</c>.</summary>
    public string PythonType { get; }

    /// <summary><c>str(exception)</c> on the Python side.</summary>
    public string PythonMessage { get; }

    /// <summary>The Python traceback as Python prints it (<c>Traceback (most recent call last): …</c>).</summary>
    public string PythonTraceback { get; }

    /// <inheritdoc />
    public override string ToString() => base.ToString() + Environment.NewLine + "Python traceback:" + Environment.NewLine + PythonTraceback;
}

/// <summary>The Python runtime could not be found or started; the message says why and what to install.</summary>
public sealed class PythonRuntimeUnavailableException(string message, DiscoveryReport? report = null) : Exception(message)
{
    /// <summary>The discovery report behind the failure, when discovery ran.</summary>
    public DiscoveryReport? Report { get; } = report;

    /// <summary>True when a cached discovery verdict failed at boot and was dropped: a fresh start probes again.</summary>
    public bool CacheWasStale { get; init; }
}

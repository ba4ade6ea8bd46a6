using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LoraBridge.Python;

/// <summary>Registers the Python runtime services with a host.</summary>
public static class ServiceCollectionExtensions
{
    /// <summary>
    /// Adds <see cref="PythonRuntimeOptions"/>, <see cref="PythonDiscovery"/> (report cached per process),
    /// <see cref="PythonRuntime"/> (discovered and booted on first resolution, finalized when the container is disposed)
    /// and <see cref="PythonBridge"/>, all singletons.
    /// </summary>
    public static IServiceCollection AddLoraBridgePython(this IServiceCollection services, Func<IServiceProvider, PythonRuntimeOptions> options)
    {
        services.AddSingleton(options);
        services.AddSingleton(sp => new PythonDiscovery(sp.GetRequiredService<PythonRuntimeOptions>()));
        services.AddSingleton(sp =>
        {
            var report = sp.GetRequiredService<PythonDiscovery>().GetReportAsync().GetAwaiter().GetResult();
            return PythonRuntime.Start(report, sp.GetRequiredService<PythonRuntimeOptions>(),
                sp.GetRequiredService<ILoggerFactory>().CreateLogger<PythonRuntime>());
        });
        services.AddSingleton(sp => new PythonBridge(sp.GetRequiredService<PythonRuntime>()));
        return services;
    }
}

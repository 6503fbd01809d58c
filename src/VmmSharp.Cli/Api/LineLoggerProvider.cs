using System.Text;
using Microsoft.Extensions.Logging;

namespace VmmSharp.Cli.Api;

/// <summary>
/// The logger's <c>log_path</c>: one line per message to a file or FIFO through a <see cref="MetricsSink"/>, so a FIFO
/// nobody reads drops lines instead of blocking the thread that logs (which may be a vCPU's).
/// </summary>
internal sealed class LineLoggerProvider(MetricsSink sink, LogLevel minimum, bool showLevel) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new LineLogger(sink, minimum, showLevel, categoryName);

    public void Dispose() => sink.Dispose();

    private sealed class LineLogger(MetricsSink sink, LogLevel minimum, bool showLevel, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None && logLevel >= minimum;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }
            string level = showLevel ? $":{logLevel}" : "";
            string message = formatter(state, exception).ReplaceLineEndings(" ");
            sink.WriteLine(Encoding.UTF8.GetBytes($"{DateTime.UtcNow:yyyy-MM-ddTHH:mm:ss.ffffffZ} [{category}{level}] {message}"));
        }
    }
}

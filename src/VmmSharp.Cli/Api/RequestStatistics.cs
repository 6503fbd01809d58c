namespace VmmSharp.Cli.Api;

/// <summary>The API's own counters for the metrics: requests, faults, and request latency since the last flush.</summary>
internal sealed class RequestStatistics
{
    private readonly Lock _lock = new();
    private long _requests;
    private long _faults;
    private long _tooLarge;
    private long _intervalCount;
    private long _intervalSumUs;
    private long _intervalMinUs;
    private long _intervalMaxUs;

    public void Record(int status, TimeSpan elapsed)
    {
        long us = (long)elapsed.TotalMicroseconds;
        lock (_lock)
        {
            _requests++;
            _faults += status >= 400 ? 1 : 0;
            _tooLarge += status == ApiFault.PayloadTooLarge ? 1 : 0;
            _intervalMinUs = _intervalCount == 0 ? us : Math.Min(_intervalMinUs, us);
            _intervalMaxUs = Math.Max(_intervalMaxUs, us);
            _intervalSumUs += us;
            _intervalCount++;
        }
    }

    /// <summary>The totals, and the latency aggregates of the interval that this call ends.</summary>
    public (long Requests, long Faults, long TooLarge, long Count, long MinUs, long AvgUs, long MaxUs) TakeInterval()
    {
        lock (_lock)
        {
            var r = (_requests, _faults, _tooLarge, _intervalCount, _intervalMinUs, _intervalCount == 0 ? 0 : _intervalSumUs / _intervalCount, _intervalMaxUs);
            _intervalCount = _intervalSumUs = _intervalMinUs = _intervalMaxUs = 0;
            return r;
        }
    }
}

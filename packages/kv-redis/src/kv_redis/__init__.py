"""kv backend for Redis and Redis Cluster (redis-py asyncio).

```python
from kv_core import Store
from kv_redis import RedisDriver

store = Store(RedisDriver.from_url("redis://localhost:6379/0"))
```
"""

from ._driver import RedisDriver

__all__ = ["RedisDriver"]
